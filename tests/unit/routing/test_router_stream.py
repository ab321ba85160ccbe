from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from ailb.contract import StreamChunk
from ailb.errors import NoDeploymentAvailableError, UpstreamConnectionError, UpstreamError, UpstreamStatusError
from ailb.routing.router import RoutedStream, Router

from .support import (
    Clock,
    Recorder,
    ScriptedProvider,
    call,
    config,
    content,
    final_chunk,
    role_chunk,
    settings,
    status_error,
)


def build(*providers: ScriptedProvider, **router: Any) -> tuple[Router, Clock, Recorder]:
    clock, observer = Clock(), Recorder()
    cfg = settings(*(p.config for p in providers), strategy="failover", **router)
    instance = Router(cfg, {p.config.name: p for p in providers}, rng=random.Random(1), clock=clock, observer=observer)
    return instance, clock, observer


def streaming(name: str, *scripts: list[Any], **cfg: Any) -> ScriptedProvider:
    return ScriptedProvider(config(name, **cfg), streams=scripts)


async def drain(routed: RoutedStream) -> list[StreamChunk]:
    return [chunk async for chunk in routed.chunks]


async def test_streams_every_chunk_and_records_the_attempt() -> None:
    a = streaming("a", [role_chunk(), content("Hel"), content("lo"), final_chunk(7, 2)])
    router, _, observer = build(a)
    routed = await router.stream(call(stream=True))
    assert routed.info.deployment == "a" and routed.info.attempts == 1
    chunks = await drain(routed)
    assert [c.text for c in chunks] == ["", "Hel", "lo", ""]
    assert observer.attempts[0][2] == "success" and observer.attempts[0][3] is not None  # ttft reported
    stats = router.stats()["deployments"]["a"]
    assert stats["tokens"] == {"input": 7, "output": 2} and stats["in_flight"] == 0
    assert stats["ttft"]["p50_ms"] is not None
    assert a.closed_streams == 1


async def test_fails_over_before_the_first_content_chunk() -> None:
    a = streaming("a", [role_chunk(), UpstreamConnectionError("dropped", deployment="a")])
    b = streaming("b", [role_chunk(), content("from b"), final_chunk()])
    router, _, observer = build(a, b)
    routed = await router.stream(call(stream=True))
    assert routed.info.deployment == "b" and routed.info.attempts == 2
    chunks = await drain(routed)
    assert [c.text for c in chunks if c.text] == ["from b"]
    assert [o[2] for o in observer.attempts] == ["error", "success"]
    assert a.closed_streams == 1


async def test_a_stream_refused_with_a_status_fails_over() -> None:
    a = streaming("a", [status_error("a", 503)])
    b = streaming("b", [content("ok"), final_chunk()])
    router, _, _ = build(a, b)
    routed = await router.stream(call(stream=True))
    assert routed.info.deployment == "b"
    await drain(routed)


async def test_a_client_error_on_a_stream_is_not_failed_over() -> None:
    a = streaming("a", [status_error("a", 400)])
    b = streaming("b", [content("ok"), final_chunk()])
    router, _, _ = build(a, b)
    with pytest.raises(UpstreamStatusError) as raised:
        await router.stream(call(stream=True))
    assert raised.value.status == 400 and b.stream_calls == []


async def test_an_error_after_the_first_content_ends_the_stream_with_an_error() -> None:
    broken = UpstreamConnectionError("dropped mid-stream", deployment="a")
    a = streaming("a", [content("partial"), content(" answer"), broken])
    b = streaming("b", [content("never"), final_chunk()])
    router, _, observer = build(a, b)
    routed = await router.stream(call(stream=True))
    received: list[str] = []
    with pytest.raises(UpstreamError) as raised:
        async for chunk in routed.chunks:
            received.append(chunk.text)
    assert raised.value is broken
    assert received == ["partial", " answer"]
    assert b.stream_calls == []
    assert [o[2] for o in observer.attempts] == ["error"]
    assert router.stats()["deployments"]["a"]["failures"] == 1
    assert router.deployments[0].in_flight == 0


async def test_aclose_closes_the_provider_stream_and_is_not_a_failure() -> None:
    a = streaming("a", [content("one"), content("two"), content("three"), final_chunk()])
    router, _, observer = build(a)
    routed = await router.stream(call(stream=True))
    first = await anext(routed.chunks)
    assert first.text == "one"
    await routed.chunks.aclose()  # type: ignore[attr-defined]
    assert a.closed_streams == 1
    assert router.deployments[0].in_flight == 0
    assert router.stats()["deployments"]["a"]["failures"] == 0
    assert observer.attempts[0][2] == "success"
    with pytest.raises(StopAsyncIteration):
        await anext(routed.chunks)


async def test_aclose_before_iterating_frees_the_slot() -> None:
    a = streaming("a", [content("one"), final_chunk()])
    router, _, _ = build(a)
    routed = await router.stream(call(stream=True))
    assert router.deployments[0].in_flight == 1
    await routed.chunks.aclose()  # type: ignore[attr-defined]
    assert router.deployments[0].in_flight == 0 and a.closed_streams == 1


async def test_a_stream_without_content_still_completes() -> None:
    a = streaming("a", [role_chunk(), final_chunk()])
    router, _, _ = build(a)
    routed = await router.stream(call(stream=True))
    assert len(await drain(routed)) == 2
    assert router.stats()["deployments"]["a"]["successes"] == 1


async def test_streams_respect_open_circuits() -> None:
    a = streaming("a", [UpstreamConnectionError("refused", deployment="a")])
    router, _, _ = build(a, failure_threshold=1, max_attempts=1)
    with pytest.raises(UpstreamConnectionError):
        await router.stream(call(stream=True))
    with pytest.raises(NoDeploymentAvailableError) as raised:
        await router.stream(call(stream=True))
    assert raised.value.retry_after == pytest.approx(5.0)


async def test_a_cancelled_stream_setup_frees_the_slot() -> None:
    gate = asyncio.Event()

    class Hanging(ScriptedProvider):
        async def stream(self, body: Any, model: str, include_usage: bool):  # type: ignore[no-untyped-def,override]
            try:
                await gate.wait()
                yield content("late")
            finally:
                self.closed_streams += 1

    a = Hanging(config("a"))
    router, _, observer = build(a)
    task = asyncio.create_task(router.stream(call(stream=True)))
    await asyncio.sleep(0.01)
    assert router.deployments[0].in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert router.deployments[0].in_flight == 0 and a.closed_streams == 1
    assert observer.attempts == []  # a client leaving says nothing about the deployment


async def test_ttft_feeds_latency_optimized_stream_routing() -> None:
    a = streaming("a", [content("x"), final_chunk()])
    router, clock, _ = build(a)
    routed = await router.stream(call(stream=True))
    await drain(routed)
    assert router.deployments[0].stats.expected_latency(True, clock()) == 0.0
    assert router.deployments[0].stats.expected_latency(False, clock()) == 0.0


async def test_a_stream_dropped_without_aclose_still_frees_the_slot() -> None:
    import gc

    a = streaming("a", [content("one"), final_chunk()])
    router, _, _ = build(a)
    routed = await router.stream(call(stream=True))
    assert router.deployments[0].in_flight == 1
    del routed
    gc.collect()
    await asyncio.sleep(0)
    assert router.deployments[0].in_flight == 0
