"""CPU of AILB's own work per streamed chat request, in process: no HTTP server, no upstream HTTP client.

    python -m bench.stream_micro [--events 25] [--reads 1] [--requests 2000] [--rounds 7] [--loop uvloop]
                                 [--deployments 1]

The OpenAI deployment's transport is replaced by one that answers every stream with a recorded body, the one the
benchmark's fake upstream sends for issue 13's streamed probe (``events`` data events, then the usage event
AILB asks for and ``[DONE]``), in ``reads`` pieces (cut at even offsets, wherever that falls). Two stages:

- ``relay``: the OpenAI adapter's stream read to its end (framing, the chunk reader, the scrubber, the join);
- ``request``: issue 13's streamed request (~2 KB) through the whole ASGI app (``HotPath``: the request's
  parsing, routing, the first-content hold, the SSE writer) with a ``send`` that keeps nothing;
- ``plain``: the same request not streamed (the fake's whole answer), for what a stream costs beyond it.

The figures are CPU µs per request (``time.process_time``), min and median of the rounds, the stages interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import orjson
import uvloop

from ailb.bootstrap import Gateway
from ailb.cli import collect_as_served
from ailb.http.app import HotPath, create_app
from ailb.providers.openai.adapter import OpenAIProvider
from ailb.settings import load_settings
from bench.fake_upstream import _COMPLETION, _DONE_PART, _USAGE_PART, stream_parts
from bench.plain_micro import settings_of
from bench.probes import ISSUE_BODY
from bench.targets import API_KEY, MODEL

ENV = {
    "OPENAI_API_KEY": API_KEY,
    "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",  # never reached: the transport is replaced
    "OPENAI_MODELS": MODEL,
    "ENABLE_MEMORY": "false",
    "ENABLE_RAG": "false",
    "ENABLE_GRPC": "false",
    "HEALTH_CHECK_INTERVAL": "0",
    "LOG_LEVEL": "warning",
}


def recorded_body(events: int) -> bytes:
    """What the fake upstream's body says for a stream of ``events`` data events with usage asked for."""
    chunked = b"".join(stream_parts(max(1, events - 1))) + _USAGE_PART + _DONE_PART
    body = b""
    while True:  # undo the HTTP chunked encoding
        size, _, rest = chunked.partition(b"\r\n")
        length = int(size, 16)
        if not length:
            return body
        body += rest[:length]
        chunked = rest[length + 2 :]


def cut(body: bytes, reads: int) -> tuple[bytes, ...]:
    step = -(-len(body) // reads)
    return tuple(body[i : i + step] for i in range(0, len(body), step))


class RecordedTransport:
    """``Transport.open_stream``'s interface, answering every stream with the same pieces."""

    def __init__(self, name: str, pieces: tuple[bytes, ...]) -> None:
        self.name = name
        self.pieces = pieces

    @asynccontextmanager
    async def open_stream(self, path: str, payload: bytes) -> AsyncIterator[AsyncIterator[bytes]]:
        yield self._pieces()

    async def _pieces(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece

    async def post_json_raw(self, path: str, payload: bytes) -> tuple[bytes, Any]:
        return _COMPLETION, orjson.loads(_COMPLETION)

    async def aclose(self) -> None:
        return None


def scope_of(body: bytes) -> dict[str, Any]:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return {
        "type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": headers, "query_string": b"",
        "http_version": "1.1", "scheme": "http", "root_path": "", "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50000),
    }  # fmt: skip


async def one_request(app: HotPath, body: bytes, forever: asyncio.Event) -> tuple[int, int]:
    """One streamed request through the app; the bytes the client received and the app's ``send`` calls (each a
    socket write in uvicorn)."""
    received = sends = 0
    request: list[dict[str, Any]] = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if request:
            return request.pop()
        await forever.wait()  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal received, sends
        received += len(message.get("body", b""))
        sends += 1

    await app(scope_of(body), receive, send)
    return received, sends


async def relay_once(provider: OpenAIProvider, body: dict[str, Any]) -> None:
    async for _chunk in provider.stream(body, MODEL, False):
        pass


async def per_request_us(work: Callable[[], Awaitable[Any]], requests: int) -> float:
    started = time.process_time()
    for _ in range(requests):
        await work()
    return (time.process_time() - started) / requests * 1e6


async def measure(args: argparse.Namespace) -> None:
    settings = replace(load_settings(ENV), deployments=settings_of(args.deployments).deployments)
    gateway = Gateway(settings, ENV)
    pieces = cut(recorded_body(args.events), args.reads)
    providers = [p for p in gateway.runtime.providers.values() if isinstance(p, OpenAIProvider)]
    for provider in providers:
        provider.transport = RecordedTransport(provider.config.name, pieces)  # type: ignore[assignment]
    app = create_app(gateway)
    await gateway.start(grpc=False)
    collect_as_served()
    forever = asyncio.Event()
    body = orjson.dumps(dict(ISSUE_BODY, stream=True))
    canonical = dict(ISSUE_BODY, stream=True)
    plain = orjson.dumps(ISSUE_BODY)
    stages: dict[str, Callable[[], Awaitable[Any]]] = {
        "relay": lambda: relay_once(providers[0], canonical),
        "request": lambda: one_request(app, body, forever),
        "plain": lambda: one_request(app, plain, forever),
    }
    received, sends = await one_request(app, body, forever)
    assert received > 0
    times: dict[str, list[float]] = {name: [] for name in stages}
    try:
        for work in stages.values():
            await per_request_us(work, args.requests // 5)  # warm-up
        for _ in range(args.rounds):
            for name, work in stages.items():
                times[name].append(await per_request_us(work, args.requests))
    finally:
        await gateway.aclose()
    print(f"{args.events} events in {len(pieces)} read(s), {sends} sends, {args.loop}, "
          f"{args.deployments} deployment(s), CPU µs per request:")  # fmt: skip
    for name, values in times.items():
        print(f"  {name:8} min {min(values):6.1f}  median {statistics.median(values):6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=25)
    parser.add_argument("--reads", type=int, default=1)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--deployments", type=int, default=1, help="of the model: 2 has the router choose")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop", help="uvloop: as `ailb serve`")
    args = parser.parse_args()
    if args.loop == "uvloop":
        uvloop.run(measure(args))
    else:
        asyncio.run(measure(args))


if __name__ == "__main__":
    main()
