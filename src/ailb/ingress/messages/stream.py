"""A canonical chat stream as Anthropic's Messages events (a state machine, one per attempt at a deployment).

``message_start``; per content block ``content_block_start``, ``content_block_delta``\\* (``thinking_delta``,
``text_delta`` or ``input_json_delta``), ``content_block_stop``; then ``message_delta`` with the stop reason and
the whole usage, and ``message_stop``. Each chunk keeps what the gateway reads (text, usage, finish reason,
whether it carries content), so failover, memory and per-key limits work as on every stream. Thinking is shown
only when the request asked for it (other providers' reasoning with an empty signature).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import orjson

from ailb.contract import StreamChunk, Usage
from ailb.errors import AILBError, UpstreamProtocolError
from ailb.ingress.canonical import deltas, mapping, text
from ailb.ingress.messages.request import MessagesSpec
from ailb.ingress.messages.response import message_id, stop_reason, usage_of
from ailb.redaction import Redactor


def event(kind: str, **fields: Any) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **fields}) + b"\n\n"


def error_event(error_type: str, message: str) -> bytes:
    return event("error", error={"type": error_type, "message": message})


class MessageEvents:
    """Canonical chunks in, Anthropic event chunks out."""

    def __init__(self, spec: MessagesSpec, deployment: str) -> None:
        self.spec = spec
        self.deployment = deployment
        self._started = False
        self._block = -1  # index of the open content block (-1: none)
        self._block_kind = ""  # "thinking", "text" or "tool_use"
        self._tools: dict[int, int] = {}  # the chat stream's tool call index -> content block index
        self._finish: str | None = None
        self._usage: Usage | None = None

    async def translate(self, chunks: AsyncIterator[StreamChunk]) -> AsyncIterator[StreamChunk]:
        try:
            async for chunk in chunks:
                for out in self.feed(chunk):
                    yield out
            yield self.closing()
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]

    def feed(self, chunk: StreamChunk) -> list[StreamChunk]:
        if chunk.usage is not None:
            self._usage = chunk.usage
        if chunk.finish_reason is not None:
            self._finish = chunk.finish_reason
        out = [] if self._started else [self._start()]
        for index, delta, _finish in deltas(chunk):
            if index == 0:
                out.extend(self._delta(delta))
        return out

    def closing(self) -> StreamChunk:
        frames = self._stop_block()
        if not self._started:
            frames = self._start().frame + frames
        stop = {"stop_reason": stop_reason(self._finish), "stop_sequence": None}
        frames += event("message_delta", delta=stop, usage=usage_of(self._usage))
        frames += event("message_stop")
        return StreamChunk(frames, usage=self._usage, finish_reason=self._finish or "stop")

    def _start(self) -> StreamChunk:
        self._started = True
        message: dict[str, Any] = {
            "id": message_id(),
            "type": "message",
            "role": "assistant",
            "model": self.spec.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return StreamChunk(event("message_start", message=message))

    def _delta(self, delta: Mapping[str, Any]) -> list[StreamChunk]:
        out: list[StreamChunk] = []
        reasoning = text(delta.get("reasoning_content")) or text(delta.get("reasoning"))
        if self.spec.thinking and reasoning:
            frames = self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            frames += self._block_delta({"type": "thinking_delta", "thinking": reasoning})
            out.append(StreamChunk(frames, has_content=True))
        answer = text(delta.get("content")) or text(delta.get("refusal"))
        if answer:
            frames = self._open("text", {"type": "text", "text": ""})
            out.append(StreamChunk(frames + self._block_delta({"type": "text_delta", "text": answer}), answer, True))
        for call in delta.get("tool_calls") or ():
            if isinstance(call, Mapping):
                out.append(StreamChunk(self._tool_call(call), has_content=True))
        return out

    def _tool_call(self, call: Mapping[str, Any]) -> bytes:
        index = call.get("index", 0)
        function = mapping(call.get("function"))
        frames = b""
        if index not in self._tools:
            name = str(function.get("name") or "")
            block = {"type": "tool_use", "id": str(call.get("id") or ""), "name": name, "input": {}}
            frames = self._open("tool_use", block, force=True)
            self._tools[index] = self._block
        fragment = function.get("arguments")
        if isinstance(fragment, str) and fragment:
            if self._tools[index] != self._block:  # Anthropic's blocks come one after the other
                raise UpstreamProtocolError(
                    f"Deployment '{self.deployment}' interleaved the arguments of two tool calls.",
                    deployment=self.deployment,
                )
            frames += self._block_delta({"type": "input_json_delta", "partial_json": fragment})
        return frames

    def _open(self, kind: str, block: dict[str, Any], force: bool = False) -> bytes:
        if self._block_kind == kind and not force:
            return b""
        frames = self._stop_block()
        self._block += 1
        self._block_kind = kind
        return frames + event("content_block_start", index=self._block, content_block=block)

    def _block_delta(self, delta: dict[str, Any]) -> bytes:
        return event("content_block_delta", index=self._block, delta=delta)

    def _stop_block(self) -> bytes:
        if not self._block_kind:
            return b""
        self._block_kind = ""
        return event("content_block_stop", index=self._block)


async def client_events(
    chunks: AsyncIterator[StreamChunk], redactor: Redactor, error_type: Callable[[AILBError], str]
) -> AsyncIterator[bytes]:
    """The frames for the client; a failure after the first byte ends with ``event: error`` (then is raised)."""
    try:
        async for chunk in chunks:
            if chunk.frame:
                yield chunk.frame
    except AILBError as exc:
        yield error_event(error_type(exc), redactor(exc.message))
        raise
