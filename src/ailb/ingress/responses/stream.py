"""A canonical chat stream as the Responses API's event stream (a pure state machine, one per response).

Events, each with its ``sequence_number``: ``response.created``, ``response.in_progress``; per output item
``response.output_item.added`` … ``response.output_item.done`` — a message with ``response.content_part.added``,
``response.output_text.delta``\\* (or ``response.refusal.delta``\\*), ``…text.done``,
``response.content_part.done``; reasoning with ``response.reasoning_text.delta``\\* (and its summary, when
asked for); a function call with ``response.function_call_arguments.delta``\\* and ``….done`` — then
``response.completed`` (``response.incomplete`` when cut by the token limit) with the whole response and its
usage. A failure after the first event is an ``error`` event followed by ``response.failed``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ailb.contract import StreamChunk, Usage
from ailb.errors import AILBError
from ailb.ingress.canonical import deltas, mapping, text
from ailb.ingress.responses.request import ResponseSpec
from ailb.ingress.responses.response import (
    finished,
    function_call_item,
    message_item,
    new_id,
    reasoning_item,
    shell,
    usage_of,
)
from ailb.redaction import Redactor


@dataclass(slots=True)
class _Item:
    kind: str  # "message", "refusal", "reasoning" or "function_call"
    id: str
    index: int
    text: list[str] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    call_id: str = ""
    name: str = ""


class ResponseEvents:
    def __init__(self, spec: ResponseSpec) -> None:
        self.spec = spec
        self.id = new_id("resp")
        self.created_at = int(time.time())
        self._sequence = 0
        self._output: list[dict[str, Any]] = []
        self._current: _Item | None = None  # the open message or reasoning item
        self._calls: dict[int, _Item] = {}  # open function calls by the chat stream's tool call index
        self._next_index = 0
        self._finish: str | None = None
        self._usage: Usage | None = None

    async def events(self, chunks: AsyncIterator[StreamChunk], redactor: Redactor) -> AsyncIterator[bytes]:
        """The whole event stream; an upstream failure is reported in the stream and then raised."""
        yield self.opening()
        try:
            async for chunk in chunks:
                frames = self.feed(chunk)
                if frames:
                    yield frames
        except AILBError as exc:
            yield self.failure(exc, redactor)
            raise
        yield self.closing()

    def opening(self) -> bytes:
        body = shell(self.spec, self.id, self.created_at, "in_progress")
        return self._event("response.created", response=body) + self._event("response.in_progress", response=body)

    def feed(self, chunk: StreamChunk) -> bytes:
        if chunk.usage is not None:
            self._usage = chunk.usage
        if chunk.finish_reason is not None:
            self._finish = chunk.finish_reason
        out = bytearray()
        for index, delta, _finish in deltas(chunk):
            if index == 0:
                self._delta(delta, out)
        return bytes(out)

    def closing(self) -> bytes:
        out = bytearray()
        if self._next_index == 0:  # an empty answer is still one (empty) message, as in a whole response
            self._item("message", out)
        out += self._close_current()
        for call in sorted(self._calls.values(), key=lambda item: item.index):
            out += self._close_call(call)
        self._calls.clear()
        body = shell(self.spec, self.id, self.created_at, "completed")
        output = sorted(self._output, key=lambda item: int(item.pop("_index")))
        body = finished(body, output, self._finish, usage_of(self._usage))
        kind = "response.incomplete" if body["status"] == "incomplete" else "response.completed"
        return bytes(out + self._event(kind, response=body))

    def failure(self, exc: AILBError, redactor: Redactor) -> bytes:
        """An ``error`` event (its ``error`` object makes the OpenAI SDK raise) and ``response.failed``."""
        message = redactor(exc.message)
        code = "rate_limit_exceeded" if exc.status == 429 else "server_error"
        error = {"type": exc.type, "code": exc.code, "message": message, "param": exc.param}
        out = self._event("error", code=exc.code, message=message, param=exc.param, error=error)
        body = shell(self.spec, self.id, self.created_at, "failed")
        body["error"] = {"code": code, "message": message}
        return out + self._event("response.failed", response=body)

    # --- deltas -------------------------------------------------------------------------------------------------
    def _delta(self, delta: Mapping[str, Any], out: bytearray) -> None:
        reasoning = text(delta.get("reasoning_content")) or text(delta.get("reasoning"))
        if reasoning:
            self._text("reasoning", reasoning, out)
        blocks = delta.get("thinking_blocks")
        if isinstance(blocks, list) and blocks:
            self._item("reasoning", out).blocks.extend(b for b in blocks if isinstance(b, dict))
        for kind, key in (("message", "content"), ("refusal", "refusal")):
            said = text(delta.get(key))
            if said:
                self._text(kind, said, out)
        for call in delta.get("tool_calls") or ():
            if isinstance(call, Mapping):
                self._tool_call(call, out)

    def _text(self, kind: str, said: str, out: bytearray) -> None:
        item = self._item(kind, out)
        item.text.append(said)
        name = {"message": "output_text", "refusal": "refusal", "reasoning": "reasoning_text"}[kind]
        extra: dict[str, Any] = {"logprobs": []} if kind == "message" else {}
        out += self._event(f"response.{name}.delta", **self._where(item), delta=said, **extra)

    def _item(self, kind: str, out: bytearray) -> _Item:
        """The open item of ``kind``, or a new one (closing the item open before it)."""
        if self._current is not None and self._current.kind == kind:
            return self._current
        out += self._close_current()
        item = self._current = _Item(kind, new_id("rs" if kind == "reasoning" else "msg"), self._claim_index())
        added = _item_body(item, self.spec.summarize, "in_progress")
        if kind == "reasoning":
            added.update(summary=[], content=[])
            added.pop("encrypted_content", None)
        else:
            added["content"] = []
        out += self._event("response.output_item.added", output_index=item.index, item=added)
        out += self._event("response.content_part.added", **self._where(item), part=_part(item, ""))
        return item

    def _tool_call(self, call: Mapping[str, Any], out: bytearray) -> None:
        index = call.get("index", 0)
        function = mapping(call.get("function"))
        item = self._calls.get(index)
        if item is None:
            out += self._close_current()
            name = str(function.get("name") or "")
            call_id = str(call.get("id") or new_id("call"))
            item = self._calls[index] = _Item("function_call", new_id("fc"), self._claim_index(), call_id=call_id)
            item.name = name
            added = function_call_item(item.id, call_id, name, "", "in_progress")
            out += self._event("response.output_item.added", output_index=item.index, item=added)
        fragment = function.get("arguments")
        if isinstance(fragment, str) and fragment:
            item.text.append(fragment)
            event = "response.function_call_arguments.delta"
            out += self._event(event, item_id=item.id, output_index=item.index, delta=fragment)

    # --- closing items --------------------------------------------------------------------------------------------
    def _close_current(self) -> bytes:
        item, self._current = self._current, None
        if item is None:
            return b""
        text = "".join(item.text)
        name = {"message": "output_text", "refusal": "refusal", "reasoning": "reasoning_text"}[item.kind]
        done: dict[str, Any] = {"refusal": text} if item.kind == "refusal" else {"text": text}
        if item.kind == "message":
            done["logprobs"] = []
        out = self._event(f"response.{name}.done", **self._where(item), **done)
        out += self._event("response.content_part.done", **self._where(item), part=_part(item, text))
        return out + self._finish_item(item, _item_body(item, self.spec.summarize, "completed"))

    def _close_call(self, item: _Item) -> bytes:
        arguments = "".join(item.text) or "{}"
        event = "response.function_call_arguments.done"
        out = self._event(event, item_id=item.id, output_index=item.index, name=item.name, arguments=arguments)
        return out + self._finish_item(item, function_call_item(item.id, item.call_id, item.name, arguments))

    def _finish_item(self, item: _Item, body: dict[str, Any]) -> bytes:
        self._output.append({**body, "_index": item.index})
        return self._event("response.output_item.done", output_index=item.index, item=body)

    # --- writing --------------------------------------------------------------------------------------------------
    def _claim_index(self) -> int:
        self._next_index += 1
        return self._next_index - 1

    @staticmethod
    def _where(item: _Item) -> dict[str, Any]:
        return {"item_id": item.id, "output_index": item.index, "content_index": 0}

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = orjson.dumps({"type": kind, "sequence_number": self._sequence, **fields})
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n"


def _part(item: _Item, text: str) -> dict[str, Any]:
    if item.kind == "refusal":
        return {"type": "refusal", "refusal": text}
    if item.kind == "reasoning":
        return {"type": "reasoning_text", "text": text}
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _item_body(item: _Item, summarize: bool, status: str) -> dict[str, Any]:
    text = "".join(item.text)
    if item.kind == "reasoning":
        return {**reasoning_item(item.id, text, item.blocks, summarize), "status": status}
    refusal = text if item.kind == "refusal" else None
    return message_item(item.id, text, refusal, status)
