"""Canonical stream chunks for the surface translators' tests, written the way the providers write them."""

from __future__ import annotations

from ailb.contract import StreamChunk, Usage
from ailb.providers.canonical import ChunkWriter


def canonical_stream(
    *,
    reasoning: tuple[str, ...] = (),
    text: tuple[str, ...] = (),
    calls: tuple[tuple[str, str, tuple[str, ...]], ...] = (),
    finish: str = "stop",
    usage: Usage | None = None,
) -> list[StreamChunk]:
    """An answer as chunks: reasoning deltas, text deltas, then tool calls ``(id, name, argument fragments)``."""
    writer = ChunkWriter("m", include_usage=False)
    chunks = [writer.opening()]
    chunks += [writer.reasoning(piece) for piece in reasoning]
    chunks += [writer.text(piece) for piece in text]
    for index, (call_id, name, fragments) in enumerate(calls):
        chunks.append(writer.tool_call_start(index, call_id, name))
        chunks += [writer.tool_call_arguments(index, fragment) for fragment in fragments]
    chunks.append(writer.finish(finish))
    chunks.append(writer.usage(usage or Usage(7, 3)))
    return chunks


async def aiter_of(chunks: list[StreamChunk]):  # type: ignore[no-untyped-def]
    for chunk in chunks:
        yield chunk
