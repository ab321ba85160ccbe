"""Embeddings through the router: the embedding catalog, failover, the egress hook of other surfaces."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

import pytest

from ailb.contract import ChatCall, Completion, EmbeddingCall, EmbeddingResult, StreamChunk
from ailb.errors import ModelNotFoundError
from ailb.providers.base import Provider
from ailb.routing.router import Router

from .support import Clock, Recorder, ScriptedProvider, call, completion, config, settings, status_error


class EmbeddingProvider(ScriptedProvider):
    def __init__(self, name: str, *outcomes: Any) -> None:
        super().__init__(config(name, embedding_models=("embed-1",)))
        self.embeddings = list(outcomes) or [EmbeddingResult([[1.0]], 3)]
        self.embedded: list[tuple[tuple[str, ...], str, int | None]] = []

    async def create_embeddings(self, texts: Sequence[str], model: str, dimensions: int | None) -> EmbeddingResult:
        self.embedded.append((tuple(texts), model, dimensions))
        outcome = self._take(self.embeddings)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[no-any-return]


def build(*providers: ScriptedProvider) -> tuple[Router, Recorder]:
    observer = Recorder()
    cfg = settings(*(p.config for p in providers), strategy="failover")
    router = Router(cfg, {p.config.name: p for p in providers}, rng=random.Random(1), clock=Clock(), observer=observer)
    return router, observer


async def test_embeddings_fail_over_like_chat() -> None:
    a = EmbeddingProvider("a", status_error("a", 503))
    b = EmbeddingProvider("b", EmbeddingResult([[0.5, 0.5]], 0))
    router, observer = build(a, b)
    result, info = await router.embed(EmbeddingCall("embed-1", ("x",), "t", dimensions=2), prompt_tokens=4)
    assert result.vectors == [[0.5, 0.5]] and (info.deployment, info.attempts) == ("b", 2)
    assert a.embedded == b.embedded == [(("x",), "embed-1", 2)]
    attempts = [
        (d, outcome, usage.prompt_tokens if usage else None) for d, _m, outcome, _t, usage, _c in observer.attempts
    ]
    assert attempts == [("a", "error", None), ("b", "success", 4)]  # b reported no count: the gateway's is recorded
    assert b.config.name in router.public_models()["embed-1"]


async def test_chat_and_embedding_models_do_not_mix() -> None:
    router, _ = build(EmbeddingProvider("a"))
    with pytest.raises(ModelNotFoundError):
        await router.embed(EmbeddingCall("gpt-4o", ("x",), "t"), prompt_tokens=1)
    with pytest.raises(ModelNotFoundError):
        await router.complete(call("embed-1"))


class Tagging:
    """An egress that answers in its own shape and says which provider it reached."""

    def __init__(self) -> None:
        self.reached: list[str] = []

    async def complete(self, provider: Provider, call: ChatCall, model: str) -> Completion:
        self.reached.append(provider.config.name)
        inner = await provider.complete(call.body, model)
        return Completion(body={"wrapped": inner.text}, usage=inner.usage, text=inner.text)

    def stream(self, provider: Provider, call: ChatCall, model: str) -> AsyncIterator[StreamChunk]:
        self.reached.append(provider.config.name)
        return provider.stream(call.body, model, False)


async def test_an_egress_is_asked_per_attempt() -> None:
    a = ScriptedProvider(config("a"), [status_error("a", 500)])
    b = ScriptedProvider(config("b"), [completion("from b")])
    router, _ = build(a, b)
    egress = Tagging()
    routed = replace(call(), egress=egress)
    answer, info = await router.complete(routed)
    assert answer.body == {"wrapped": "from b"} and egress.reached == ["a", "b"] and info.deployment == "b"
