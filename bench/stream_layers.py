"""CPU of the layers a streamed chat request goes through besides the provider's relay, in process.

    python -m bench.stream_layers [--requests 500] [--rounds 30]

As ``bench.stream_micro``'s ``request`` and ``plain`` stages, but the OpenAI deployment's provider is replaced by
one answering at once with a prebuilt chunk (a stream: one read holding the whole answer, as the benchmark's
streamed probe arrives) or a prebuilt completion, so what a stream costs beyond a plain request is AILB's own
layers (routing, the first-content hold, metering/memory/tracing when on, the SSE writer), without the relay's
parsing in the figure. Each request's CPU time is taken on its own (``time.thread_time_ns``) and the figures are
percentiles: on a machine shared with other work, the low percentiles move far less than a mean does.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import orjson
import uvloop

from ailb.bootstrap import Gateway
from ailb.contract import Completion, StreamChunk, Usage
from ailb.http.app import create_app
from ailb.providers.openai.adapter import OpenAIProvider
from ailb.settings import load_settings
from bench.fake_upstream import _COMPLETION
from bench.probes import ISSUE_BODY
from bench.stream_micro import ENV, one_request, recorded_body

ANSWER = StreamChunk(
    frame=recorded_body(25).removesuffix(b"data: [DONE]\n\n"),
    text="answer " * 25,
    has_content=True,
    usage=Usage(200, 25),
    finish_reason="stop",
)
COMPLETION = Completion(orjson.loads(_COMPLETION), Usage(200, 25), "answer " * 25, _COMPLETION)


class PrebuiltStream:
    """A relay's interface (``ready``, ``finished``, ``aclose``) over one read that holds the whole answer."""

    def __init__(self) -> None:
        self.finished = False
        self._reads = self._read()

    def __aiter__(self) -> PrebuiltStream:
        return self

    async def __anext__(self) -> StreamChunk:
        return await anext(self._reads)

    def ready(self) -> list[StreamChunk]:
        return []

    async def aclose(self) -> None:
        await self._reads.aclose()

    async def _read(self) -> AsyncGenerator[StreamChunk, None]:
        self.finished = True
        yield ANSWER


def prebuilt(provider: OpenAIProvider) -> None:
    async def complete(body: Mapping[str, Any], model: str) -> Completion:
        return COMPLETION

    def stream(body: Mapping[str, Any], model: str, include_usage: bool) -> AsyncIterator[StreamChunk]:
        return PrebuiltStream()

    provider.complete = complete  # type: ignore[method-assign]
    provider.stream = stream  # type: ignore[method-assign]


def percentile(values: list[float], share: float) -> float:
    return sorted(values)[int(len(values) * share)]


async def measure(args: argparse.Namespace) -> None:
    gateway = Gateway(load_settings(ENV), ENV)
    for provider in gateway.runtime.providers.values():
        if isinstance(provider, OpenAIProvider):
            prebuilt(provider)
    app = create_app(gateway)
    await gateway.start(grpc=False)
    forever = asyncio.Event()
    streamed, plain = orjson.dumps(dict(ISSUE_BODY, stream=True)), orjson.dumps(ISSUE_BODY)
    stages: dict[str, Callable[[], Awaitable[Any]]] = {
        "request": lambda: one_request(app, streamed, forever),
        "plain": lambda: one_request(app, plain, forever),
    }
    times: dict[str, list[float]] = {name: [] for name in stages}
    clock = time.thread_time_ns
    try:
        for work in stages.values():
            for _ in range(args.requests):  # warm-up
                await work()
        for _ in range(args.rounds):
            for name, work in stages.items():
                for _ in range(args.requests):
                    started = clock()
                    await work()
                    times[name].append((clock() - started) / 1000)
    finally:
        await gateway.aclose()
    print("prebuilt answers, CPU µs per request:")
    for name, values in times.items():
        print(f"  {name:8} p10 {percentile(values, 0.1):6.1f}  p50 {percentile(values, 0.5):6.1f}")
    beyond = percentile(times["request"], 0.5) - percentile(times["plain"], 0.5)
    print(f"  a stream's layers beyond a plain request (p50): {beyond:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    uvloop.run(measure(args))


if __name__ == "__main__":
    main()
