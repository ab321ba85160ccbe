"""Cutting an upstream's byte stream into frames: server-sent events (OpenAI, Anthropic) or NDJSON (Ollama).

Pure: they read any async iterator of bytes, as a socket delivers them, cut wherever.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable

from ailb.errors import UpstreamProtocolError

MAX_STREAM_LINE = 16 * 1024 * 1024
Framing = Callable[[AsyncIterator[bytes], str], AsyncGenerator[bytes, None]]


async def sse_events(chunks: AsyncIterator[bytes], deployment: str = "") -> AsyncIterator[tuple[str, bytes]]:
    """Split a server-sent-event byte stream into ``(event, data)`` pairs (``event`` is "" when unnamed)."""
    buffer = b""
    event = ""
    data: list[bytes] = []
    async for piece in chunks:
        buffer += piece
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = buffer[start:end].rstrip(b"\r")
            start = end + 1
            if not line:
                if data:
                    yield event, b"\n".join(data)
                event, data = "", []
                continue
            if line.startswith(b":"):
                continue
            fname, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if fname == b"data":
                data.append(value)
            elif fname == b"event":
                event = value.decode("utf-8", "replace")
        buffer = buffer[start:]
        if len(buffer) > MAX_STREAM_LINE:
            raise _too_long(deployment)
    if data:
        yield event, b"\n".join(data)


async def sse_data(chunks: AsyncIterator[bytes], deployment: str = "") -> AsyncGenerator[bytes, None]:
    """The ``data`` of each server-sent event (the vendors say what an event is inside its data)."""
    async for _event, data in sse_events(chunks, deployment):
        yield data


async def ndjson_lines(chunks: AsyncIterator[bytes], deployment: str = "") -> AsyncGenerator[bytes, None]:
    """Split a newline-delimited JSON stream into non-empty lines."""
    buffer = b""
    async for piece in chunks:
        buffer += piece
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
        if len(buffer) > MAX_STREAM_LINE:
            raise _too_long(deployment)
    if buffer.strip():
        yield buffer


def _too_long(deployment: str) -> UpstreamProtocolError:
    who = f"Deployment '{deployment}'" if deployment else "An upstream"
    return UpstreamProtocolError(f"{who} sent a stream line over the size limit.", deployment=deployment)
