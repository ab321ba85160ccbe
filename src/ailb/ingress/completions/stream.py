"""Canonical chat streams (one per prompt, one after the other) as one legacy completions stream.

Each chunk is ``data: {"object": "text_completion", "choices": [{"text", "index", "logprobs", "finish_reason"}]}``
under one id; with ``echo`` a choice's first chunk is its prompt. With ``stream_options.include_usage`` a last
chunk without choices carries the summed usage; ``data: [DONE]`` ends the stream. A failure after the first
byte ends it with an SSE ``event: error`` (OpenAI's error object) and no ``[DONE]``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from ailb.contract import StreamChunk, Usage
from ailb.errors import AILBError
from ailb.ingress import canonical
from ailb.ingress.canonical import deltas
from ailb.ingress.completions.request import CompletionSpec
from ailb.ingress.completions.response import choice, completion_id, legacy_finish

DONE = b"data: [DONE]\n\n"
Opener = Callable[[int], Awaitable[AsyncIterator[StreamChunk]]]


class CompletionEvents:
    def __init__(self, spec: CompletionSpec) -> None:
        self.spec = spec
        self.id = completion_id()
        self.created = int(time.time())
        self._started: set[int] = set()  # choices whose echo was written
        self._usage = Usage()

    def feed(self, number: int, chunk: StreamChunk) -> bytes:
        """The frames for one chunk of prompt ``number``'s stream."""
        if chunk.usage is not None:
            self._usage = self._usage + chunk.usage
        out = b""
        for position, delta, finish_reason in deltas(chunk):
            index = number * self.spec.n + position
            text = canonical.text(delta.get("content"))
            if index not in self._started:
                self._started.add(index)
                text = (self.spec.prompts[number] if self.spec.echo else "") + text
            finish = legacy_finish(finish_reason)
            if text or finish is not None:
                out += self._frame([choice(text, index, finish)])
        return out

    def usage_frame(self) -> bytes:
        usage = self._usage.as_dict()
        usage.pop("prompt_tokens_details", None)
        return self._frame([], usage)

    def _frame(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.spec.model,
            "choices": choices,
        }
        if usage is not None:
            chunk["usage"] = usage
        return b"data: " + orjson.dumps(chunk) + b"\n\n"


async def events(
    spec: CompletionSpec,
    first: AsyncIterator[StreamChunk],
    open_next: Opener,
    error_frame: Callable[[AILBError], bytes],
) -> AsyncIterator[bytes]:
    """The whole stream: prompt 0's chunks (already routed), then each further prompt's, routed in turn."""
    writer = CompletionEvents(spec)
    try:
        for number in range(len(spec.prompts)):
            chunks = first if number == 0 else await open_next(number)
            try:
                async for chunk in chunks:
                    frames = writer.feed(number, chunk)
                    if frames:
                        yield frames
            finally:
                await chunks.aclose()  # type: ignore[attr-defined]
    except AILBError as exc:
        yield error_frame(exc)
        raise
    if spec.include_usage:
        yield writer.usage_frame()
    yield DONE
