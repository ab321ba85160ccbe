"""The relay's read-at-once path for OpenAI streams (``OpenAIStream.feed_read``) gives exactly what feeding the
events one at a time gives: the same chunks (frames, texts, usage, finish reasons), the same errors at the same
place, the same scrubbing, however the body is cut into reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest

from ailb.contract import StreamChunk
from ailb.providers.framing import SseData
from ailb.providers.openai.stream import OpenAIStream
from ailb.providers.relay import relay
from ailb.redaction import SecretSet

KEY = "sk-Echoed-Key-7f3a9c"
SECRETS = SecretSet([KEY])


class Recorded:
    """``Transport.open_stream`` answering with ``raw`` cut into ``size``-byte reads."""

    name = "up"

    def __init__(self, raw: bytes, size: int) -> None:
        self.reads = [raw[i : i + size] for i in range(0, len(raw), size)]

    @asynccontextmanager
    async def open_stream(self, path: str, payload: bytes) -> AsyncIterator[AsyncIterator[bytes]]:
        yield self._reads()

    async def _reads(self) -> AsyncIterator[bytes]:
        for read in self.reads:
            yield read


class EventByEvent:
    """An ``OpenAIStream`` without its read-at-once path: the relay feeds it one event at a time."""

    def __init__(self, state: OpenAIStream) -> None:
        self._state = state

    @property
    def finished(self) -> bool:
        return self._state.finished

    @property
    def complete(self) -> bool:
        return self._state.complete

    def feed(self, data: bytes) -> list[StreamChunk]:
        return self._state.feed(data)


def event(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    body: dict[str, Any] = {"id": "c1", "object": "chat.completion.chunk", **extra}
    if delta is not None:
        body["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    return b"data: " + orjson.dumps(body) + b"\n\n"


USAGE = event(None, choices=[], usage={"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12})
DONE = b"data: [DONE]\n\n"
ANSWER = event({"role": "assistant", "content": ""}) + b"".join(
    event({"content": word}) for word in ("Hello", " there", ", friend", ".")
)
STREAMS = {
    "plain": ANSWER + event({}, "stop") + USAGE + DONE,
    "no done": ANSWER + event({}, "stop") + USAGE,
    "cut short": ANSWER,
    "after done": ANSWER + event({}, "stop") + DONE + event({"content": "late"}),
    "tool call": event({"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f", "arguments": "{}"}}]})
    + event({}, "tool_calls")
    + DONE,
    "two choices": b"data: "
    + orjson.dumps({"choices": [{"index": 1, "delta": {"content": "b"}}, {"index": 0, "delta": {"content": "a"}}]})
    + b"\n\n"
    + event({}, "stop")
    + DONE,
    "error event": ANSWER + b'data: {"error": {"message": "overloaded"}}\n\n' + DONE,
    "not json": ANSWER + b"data: {nope\n\n" + DONE,
    "not an object": ANSWER + b"data: [1, 2]\n\n" + DONE,
    "malformed choice": ANSWER + b'data: {"choices": ["x"]}\n\n' + DONE,
    "comments and crlf": b": keep-alive\r\n\r\n" + ANSWER + event({}, "stop") + DONE,
    "secret in a frame": ANSWER + event({"content": f"the key is {KEY}!"}) + event({}, "stop") + DONE,
    "secret across events": ANSWER + event({"content": KEY[:7]}) + event({"content": KEY[7:]}) + DONE,
    "escaped secret": ANSWER
    + b'data: {"choices":[{"index":0,"delta":{"content":"\\u0073k-Echoed-Key-7f3a9c"}}]}\n\n'
    + DONE,
    "escaped, clean": ANSWER + b'data: {"choices":[{"index":0,"delta":{"content":"a\\u00e9b"}}]}\n\n' + DONE,
}


async def outcome(state: Any, raw: bytes, size: int) -> list[Any]:
    """What the relay hands on: each chunk's fields, then the error it raised (type and message), if any."""
    out: list[Any] = []
    chunks = relay(Recorded(raw, size), "/chat/completions", b"{}", SseData, state, SECRETS)  # type: ignore[arg-type]
    try:
        async for chunk in chunks:
            out.append((chunk.frame, chunk.text, chunk.has_content, chunk.usage, chunk.finish_reason))
    except Exception as exc:
        out.append((type(exc).__name__, str(exc)))
    return out


@pytest.mark.parametrize("name", list(STREAMS))
@pytest.mark.parametrize("include_usage", [False, True])
async def test_reads_at_once_give_what_events_one_at_a_time_give(name: str, include_usage: bool) -> None:
    raw = STREAMS[name]
    for size in (len(raw), 1, 7, 50, 97, 160, 300):
        fast = OpenAIStream(include_usage, "up")
        expected = await outcome(EventByEvent(OpenAIStream(include_usage, "up")), raw, size)
        assert await outcome(fast, raw, size) == expected, (name, size)


async def test_a_whole_clean_stream_is_one_chunk_with_the_frames_as_they_came() -> None:
    raw = STREAMS["plain"]
    (chunk,) = await outcome(OpenAIStream(False, "up"), raw, len(raw))
    assert chunk[0] == ANSWER + event({}, "stop")  # the usage event the client did not ask for is left out
    assert chunk[1:] == ("Hello there, friend.", True, chunk[3], "stop") and chunk[3].completion_tokens == 3


async def test_a_secret_split_across_reads_is_masked() -> None:
    raw = STREAMS["secret across events"]
    for size in (len(raw), 60, 200):
        got = await outcome(OpenAIStream(False, "up"), raw, size)
        frames = b"".join(item[0] for item in got)
        assert KEY.encode() not in frames and b"****" in frames
        assert "".join(item[1] for item in got).endswith("****")
