"""A very fast OpenAI-compatible fake upstream: a raw asyncio protocol on uvloop with the httptools parser.

``POST .../chat/completions`` answers a fixed completion, or with ``"stream": true`` a few SSE chunks (the
first one already carries content, so time to first byte is time to first token); ``GET .../models`` lists
``bench-model``. A streamed request whose ``user`` is a ``shape_tag`` gets a stream of that shape instead.
Run it in its own process: ``python -m bench.fake_upstream --port 9000 --cpu 0``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from dataclasses import dataclass
from typing import ClassVar, cast

import httptools
import orjson
import uvloop

MODEL = "bench-model"
_CREATED = int(time.time())
_USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
_COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": _CREATED,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the fake upstream."},
                "finish_reason": "stop",
            }
        ],
        "usage": _USAGE,
    }
)
_MODELS = orjson.dumps(
    {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "bench"}]}
)


def _chunk(delta: dict[str, str], finish_reason: str | None, usage: dict[str, int] | None = None) -> bytes:
    choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
    event = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": _CREATED,
        "model": MODEL,
        "choices": choices,
    }
    if usage:
        event["usage"] = usage
    return _http_chunk(b"data: " + orjson.dumps(event) + b"\n\n")


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


_WORDS = (" from", " the fake", " upstream.")


def stream_parts(content_chunks: int, role_first: bool = False) -> tuple[bytes, ...]:
    """The role chunk (already with content, or with ``role_first`` none, as OpenAI sends it), the further
    content chunks (``content_chunks`` carry content in all), the finish chunk."""
    words = [_WORDS[i % len(_WORDS)] for i in range(max(0, content_chunks - 1))]
    if role_first:
        first = _chunk({"role": "assistant", "content": ""}, None)
        words = ["Hello", *words]
    else:
        first = _chunk({"role": "assistant", "content": "Hello"}, None)
    return (first, *(_chunk({"content": word}, None) for word in words), _chunk({}, "stop"))


SHAPE_PREFIX = "bench-stream:"


def shape_tag(events: int, delay_ms: float, role_first: bool) -> str:
    """The request's ``user`` field that asks the fake for this stream shape (every proxy passes ``user`` on):
    ``events`` data events before ``[DONE]`` (the role chunk and the finish chunk included), ``delay_ms`` apart;
    with ``role_first`` the first event carries the role only, the content starts with the second."""
    return f"{SHAPE_PREFIX}{events}:{delay_ms:g}:{int(role_first)}"


@dataclass(frozen=True)
class Shape:
    parts: tuple[bytes, ...]
    delay: float  # seconds between parts


def parse_shape(tag: object, cache: dict[str, Shape]) -> Shape | None:
    if not isinstance(tag, str) or not tag.startswith(SHAPE_PREFIX):
        return None
    shape = cache.get(tag)
    if shape is None:
        events, delay_ms, role_first = tag.removeprefix(SHAPE_PREFIX).split(":")
        role = role_first == "1"
        content_chunks = max(1, int(events) - 1 - int(role))
        shape = cache[tag] = Shape(stream_parts(content_chunks, role), float(delay_ms) / 1000)
    return shape


_USAGE_PART = _chunk({}, None, _USAGE)
_DONE_PART = _http_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"


def _head(status: bytes, content_type: bytes, length: int | None, keep_alive: bool) -> bytes:
    framing = b"Transfer-Encoding: chunked" if length is None else b"Content-Length: %d" % length
    connection = b"keep-alive" if keep_alive else b"close"
    return b"HTTP/1.1 %s\r\nContent-Type: %s\r\n%s\r\nConnection: %s\r\n\r\n" % (
        status,
        content_type,
        framing,
        connection,
    )


class FakeUpstream(asyncio.Protocol):
    """One connection. Requests are answered in order; reading pauses while a stream is being written."""

    shapes: ClassVar[dict[str, Shape]] = {}

    def __init__(self, chunk_delay: float, parts: tuple[bytes, ...]) -> None:
        self.chunk_delay = chunk_delay
        self.parts = parts
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports don't subclass asyncio's

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._close()
        except httptools.HttpParserError:
            self._close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        url, body = self.url, b"".join(self.body)
        self.url, self.body = b"", []
        keep_alive = self.parser.should_keep_alive()
        method = self.parser.get_method()
        if method == b"POST" and url.endswith(b"/chat/completions"):
            self._chat(body, keep_alive)
        elif method == b"GET" and url.endswith(b"/models"):
            self._write(_head(b"200 OK", b"application/json", len(_MODELS), keep_alive) + _MODELS, keep_alive)
        else:
            self._write(_head(b"404 Not Found", b"text/plain", 0, keep_alive), keep_alive)

    def _chat(self, body: bytes, keep_alive: bool) -> None:
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            self._write(_head(b"400 Bad Request", b"text/plain", 0, keep_alive), keep_alive)
            return
        if not request.get("stream"):
            head = _head(b"200 OK", b"application/json", len(_COMPLETION), keep_alive)
            self._write(head + _COMPLETION, keep_alive)
            return
        options = request.get("stream_options") or {}
        tail = (_USAGE_PART if options.get("include_usage") else b"") + _DONE_PART
        head = _head(b"200 OK", b"text/event-stream", None, keep_alive)
        shape = parse_shape(request.get("user"), self.shapes) or Shape(self.parts, self.chunk_delay)
        if shape.delay <= 0:
            self._write(head + b"".join(shape.parts) + tail, keep_alive)
            return
        assert self.transport is not None
        self.transport.pause_reading()
        asyncio.get_running_loop().create_task(self._stream_slowly(head, tail, keep_alive, shape))

    async def _stream_slowly(self, head: bytes, tail: bytes, keep_alive: bool, shape: Shape) -> None:
        transport = self.transport
        assert transport is not None
        transport.write(head + shape.parts[0])
        for part in shape.parts[1:]:
            await asyncio.sleep(shape.delay)
            if transport.is_closing():
                return
            transport.write(part)
        self._write(tail, keep_alive)
        if keep_alive and not transport.is_closing():
            transport.resume_reading()

    def _write(self, data: bytes, keep_alive: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(data)
        if not keep_alive:
            self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def serve(host: str, port: int, chunk_delay: float, content_chunks: int) -> None:
    loop = asyncio.get_running_loop()
    parts = stream_parts(content_chunks)
    server = await loop.create_server(
        lambda: FakeUpstream(chunk_delay, parts), host, port, backlog=1024, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"fake upstream listening on http://{host}:{port}/v1", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="Fast OpenAI-compatible fake upstream for the benchmark.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cpu", type=int, help="pin this process to one CPU")
    parser.add_argument("--chunk-delay-ms", type=float, default=1.0, help="pause between streamed chunks")
    parser.add_argument("--content-chunks", type=int, default=4, help="streamed chunks carrying content")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    uvloop.run(serve(args.host, args.port, args.chunk_delay_ms / 1000, args.content_chunks))


if __name__ == "__main__":
    main()
