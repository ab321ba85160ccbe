"""Helpers for feeding recorded upstream streams, as bytes, through the pure stream translators."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson

from ailb.contract import StreamChunk
from ailb.providers.framing import ndjson_lines, sse_events


def sse_bytes(events: Iterable[dict[str, Any]]) -> bytes:
    """Anthropic-style SSE: a named event line plus one data line per event."""
    return b"".join(b"event: " + str(e["type"]).encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


def ndjson_bytes(lines: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


async def pieces(raw: bytes, size: int) -> AsyncIterator[bytes]:
    """``raw`` cut into ``size``-byte pieces, as a socket might deliver it."""
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


async def feed_sse(state: Any, raw: bytes, piece_size: int = 7) -> list[StreamChunk]:
    chunks: list[StreamChunk] = []
    async for _event, data in sse_events(pieces(raw, piece_size)):
        chunks.extend(state.feed(data))
    return chunks


async def feed_ndjson(state: Any, raw: bytes, piece_size: int = 7) -> list[StreamChunk]:
    chunks: list[StreamChunk] = []
    async for line in ndjson_lines(pieces(raw, piece_size)):
        chunks.extend(state.feed(line))
    return chunks


def payloads(chunks: Iterable[StreamChunk]) -> list[dict[str, Any]]:
    """The JSON objects of the chunks' events (a chunk holds those of one upstream read), checking the SSE framing
    on the way."""
    out = []
    for chunk in chunks:
        if not chunk.frame:
            continue
        assert chunk.frame.endswith(b"\n\n")
        for event in chunk.frame[:-2].split(b"\n\n"):
            assert event.startswith(b"data: ") and b"\n" not in event
            out.append(orjson.loads(event[6:]))
    return out


def assembled_tool_calls(objs: Iterable[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Tool calls put together from chunk deltas the way an OpenAI client does, by ``index``."""
    calls: dict[int, dict[str, Any]] = {}
    for obj in objs:
        for choice in obj["choices"]:
            for delta in choice["delta"].get("tool_calls") or []:
                call = calls.setdefault(delta["index"], {"id": None, "name": None, "arguments": ""})
                if "id" in delta:
                    call["id"] = delta["id"]
                    assert delta["type"] == "function"
                function = delta.get("function") or {}
                if "name" in function:
                    call["name"] = function["name"]
                call["arguments"] += function.get("arguments", "")
    return calls
