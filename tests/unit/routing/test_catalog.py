from __future__ import annotations

import pytest

from ailb.errors import ModelNotFoundError
from ailb.routing.catalog import Catalog

from .support import Clock, config, deployment


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_models_resolve_to_every_deployment_serving_them(clock: Clock) -> None:
    a = deployment(config("a", models=("gpt-4o", "gpt-4o-mini")), clock)
    b = deployment(config("b", models=("gpt-4o",)), clock)
    catalog = Catalog([a, b], {})
    assert [(t.deployment.name, t.model) for t in catalog.targets("gpt-4o")] == [("a", "gpt-4o"), ("b", "gpt-4o")]
    assert [t.deployment.name for t in catalog.targets("gpt-4o-mini")] == ["a"]


def test_unknown_model_is_not_found(clock: Clock) -> None:
    catalog = Catalog([deployment(config("a"), clock)], {})
    with pytest.raises(ModelNotFoundError) as raised:
        catalog.targets("gpt-5-ultra")
    assert raised.value.status == 404 and raised.value.param == "model"


def test_alias_spans_providers_with_each_deployments_own_model(clock: Clock) -> None:
    openai = deployment(config("openai", models=("gpt-4o",)), clock)
    anthropic = deployment(config("anthropic", provider="anthropic", models=("claude-3-5-sonnet-latest",)), clock)
    other = deployment(config("other", models=("gpt-3.5-turbo",)), clock)
    catalog = Catalog([openai, anthropic, other], {"smart": ("claude-3-5-sonnet-latest", "gpt-4o")})
    targets = [(t.deployment.name, t.model) for t in catalog.targets("smart")]
    assert sorted(targets) == [("anthropic", "claude-3-5-sonnet-latest"), ("openai", "gpt-4o")]
    assert catalog.public_models()["smart"] == ["anthropic", "openai"]


def test_a_deployment_serving_two_alias_targets_appears_once(clock: Clock) -> None:
    a = deployment(config("a", models=("gpt-4o", "gpt-4o-mini")), clock)
    catalog = Catalog([a], {"any": ("gpt-4o-mini", "gpt-4o")})
    assert [(t.deployment.name, t.model) for t in catalog.targets("any")] == [("a", "gpt-4o-mini")]


def test_list_models_gives_models_then_aliases_with_provider_kind(clock: Clock) -> None:
    openai = deployment(config("openai", models=("gpt-4o",)), clock)
    anthropic = deployment(config("anthropic", provider="anthropic", models=("claude-3-opus-latest",)), clock)
    catalog = Catalog([openai, anthropic], {"best": ("gpt-4o", "claude-3-opus-latest"), "fast": ("gpt-4o",)})
    listed = [(m.id, m.owned_by) for m in catalog.list_models()]
    assert listed == [("gpt-4o", "openai"), ("claude-3-opus-latest", "anthropic"), ("best", "ailb"), ("fast", "openai")]


def test_discovered_ollama_models_join_after_a_rebuild(clock: Clock) -> None:
    ollama = deployment(config("ollama", provider="ollama", models=()), clock)
    catalog = Catalog([ollama], {"local": ("llama3",)})
    assert catalog.targets("local") == ()
    assert ollama.set_models(["llama3:latest", "qwen2:7b"])
    catalog.rebuild()
    assert [(t.deployment.name, t.model) for t in catalog.targets("llama3")] == [("ollama", "llama3:latest")]
    assert [t.model for t in catalog.targets("local")] == ["llama3:latest"]
    assert [m.id for m in catalog.list_models()] == ["llama3:latest", "qwen2:7b", "local"]


def test_serving_lists_config_weights_for_a_route(clock: Clock) -> None:
    a = deployment(config("a", weight=2), clock)
    b = deployment(config("b", models=("x",)), clock)
    catalog = Catalog([a, b], {})
    assert catalog.serving("gpt-4o") == {"a": 2.0}
    assert catalog.serving("*") == {"a": 2.0, "b": 1.0}


def test_embedding_models_are_a_catalog_of_their_own(clock: Clock) -> None:
    openai = deployment(config("openai", models=("gpt-4o",), embedding_models=("text-embedding-3-small",)), clock)
    ollama = deployment(config("ollama", provider="ollama", models=(), embedding_models=("nomic-embed-text",)), clock)
    chat, embeddings = Catalog([openai, ollama], {}), Catalog([openai, ollama], {"x": ("gpt-4o",)}, embeddings=True)
    assert chat.has("gpt-4o") and not chat.has("text-embedding-3-small")
    assert not embeddings.has("gpt-4o") and not embeddings.has("x")
    assert [t.deployment.name for t in embeddings.targets("text-embedding-3-small")] == ["openai"]
    assert [m.id for m in embeddings.list_models()] == ["text-embedding-3-small", "nomic-embed-text"]
    ollama.set_models(["llama3:latest", "nomic-embed-text:latest", "nomic-embed-text"])
    assert ollama.models == ("llama3:latest",)  # discovered embedding models are not chat models
