"""Cutting an upstream's byte stream into frames: server-sent events (OpenAI, Anthropic) or NDJSON (Ollama).

Pure: a splitter is fed the pieces of the body as a socket delivers them, cut wherever, and answers with the
frames each piece completed, so the relay can hand a whole piece's frames on at once. The async generators
read an async iterator of pieces with the same splitters.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from ailb.errors import UpstreamProtocolError

MAX_STREAM_LINE = 16 * 1024 * 1024
_EVENT_LINES = re.compile(rb"\nevent: [^\n]*")  # but the first line: an ``event: `` line, its newline before it


class Splitter(Protocol):
    def feed(self, piece: bytes) -> list[bytes]:
        """The frames' payloads ``piece`` completed."""
        ...

    def end(self) -> list[bytes]:
        """The body ended: the payload of a last frame left unterminated, if any."""
        ...


Framing = Callable[[str], Splitter]  # a splitter for one stream of the named deployment


class SseSplitter:
    """Server-sent events as ``(event, data)`` pairs (``event`` is "" when unnamed)."""

    __slots__ = ("_buffer", "_data", "_event", "deployment")

    def __init__(self, deployment: str = "") -> None:
        self.deployment = deployment
        self._buffer = b""
        self._event = ""
        self._data: list[bytes] = []

    def feed_events(self, piece: bytes) -> list[tuple[str, bytes]]:
        buffer = self._buffer + piece if self._buffer else piece
        datas = self._simple_datas(buffer)
        if datas is not None:
            return [("", data) for data in datas]
        return self._parse_lines(buffer)

    def _simple_datas(self, buffer: bytes, drop_names: bool = False) -> list[bytes] | None:
        """What the vendors send: events of one ``data: `` line each (with ``drop_names``, after an ``event: `` line
        or not: Anthropic names every event), ``\n``-terminated; their data, the rest of ``buffer`` kept. None,
        with nothing kept, when the complete events in ``buffer`` are anything else (or an event is half read by
        the line parser): the line parser then reads them."""
        if self._data or self._event or b"\r" in buffer:
            return None
        end = buffer.rfind(b"\n\n")
        if end < 0:
            datas = []
        else:
            events = buffer[:end]
            if drop_names and events.startswith(b"event: "):
                events = _EVENT_LINES.sub(b"", events)
                events = events[events.find(b"\n") + 1 :]  # the first one (not after a newline)
            if not events.startswith(b"data: "):
                return None
            datas = events[6:].split(b"\n\ndata: ")
            # A newline left in the data is a line the split did not see (an event of more lines, a field other
            # than ``data``, a blank line more): then not simple. (One search of the joined data beats a count.)
            if b"\n" in b"".join(datas):
                return None
        rest = buffer[end + 2 :] if end >= 0 else buffer
        if len(rest) > MAX_STREAM_LINE:
            raise _too_long(self.deployment)
        self._buffer = rest
        return datas

    def _parse_lines(self, buffer: bytes) -> list[tuple[str, bytes]]:
        events: list[tuple[str, bytes]] = []
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = buffer[start:end].rstrip(b"\r")
            start = end + 1
            if not line:
                if self._data:
                    events.append((self._event, b"\n".join(self._data)))
                self._event, self._data = "", []
                continue
            if line.startswith(b":"):
                continue
            fname, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if fname == b"data":
                self._data.append(value)
            elif fname == b"event":
                self._event = value.decode("utf-8", "replace")
        self._buffer = buffer[start:]
        if len(self._buffer) > MAX_STREAM_LINE:
            raise _too_long(self.deployment)
        return events

    def end_events(self) -> list[tuple[str, bytes]]:
        events = self._parse_lines(self._buffer) if self._buffer else []
        if self._data:
            events.append((self._event, b"\n".join(self._data)))
        return events


class SseData(SseSplitter):
    """The ``data`` of each server-sent event (the vendors say what an event is inside its data)."""

    __slots__ = ()

    def feed(self, piece: bytes) -> list[bytes]:
        buffer = self._buffer + piece if self._buffer else piece
        datas = self._simple_datas(buffer, drop_names=True)
        if datas is not None:
            return datas
        return [data for _event, data in self._parse_lines(buffer)]

    def end(self) -> list[bytes]:
        return [data for _event, data in self.end_events()]


class NdjsonLines:
    """Newline-delimited JSON: the non-empty lines."""

    __slots__ = ("_buffer", "deployment")

    def __init__(self, deployment: str = "") -> None:
        self.deployment = deployment
        self._buffer = b""

    def feed(self, piece: bytes) -> list[bytes]:
        *lines, self._buffer = (self._buffer + piece).split(b"\n")
        if len(self._buffer) > MAX_STREAM_LINE:
            raise _too_long(self.deployment)
        return [line for line in lines if line.strip()]

    def end(self) -> list[bytes]:
        return [self._buffer] if self._buffer.strip() else []


async def sse_events(chunks: AsyncIterator[bytes], deployment: str = "") -> AsyncIterator[tuple[str, bytes]]:
    """Split a server-sent-event byte stream into ``(event, data)`` pairs (``event`` is "" when unnamed)."""
    splitter = SseSplitter(deployment)
    async for piece in chunks:
        for pair in splitter.feed_events(piece):
            yield pair
    for pair in splitter.end_events():
        yield pair


async def sse_data(chunks: AsyncIterator[bytes], deployment: str = "") -> AsyncIterator[bytes]:
    """The ``data`` of each server-sent event."""
    async for _event, data in sse_events(chunks, deployment):
        yield data


async def ndjson_lines(chunks: AsyncIterator[bytes], deployment: str = "") -> AsyncIterator[bytes]:
    """Split a newline-delimited JSON stream into non-empty lines."""
    splitter = NdjsonLines(deployment)
    async for piece in chunks:
        for line in splitter.feed(piece):
            yield line
    for line in splitter.end():
        yield line


def _too_long(deployment: str) -> UpstreamProtocolError:
    who = f"Deployment '{deployment}'" if deployment else "An upstream"
    return UpstreamProtocolError(f"{who} sent a stream line over the size limit.", deployment=deployment)
