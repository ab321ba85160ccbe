"""Anthropic's streaming events as OpenAI ``chat.completion.chunk`` frames: a pure state machine.

Feed it each SSE event's ``data`` in order; it returns the chunks to pass on. The event sequence is
``message_start``, then per content block ``content_block_start`` / ``content_block_delta``* /
``content_block_stop``, then ``message_delta`` (stop reason, final usage) and ``message_stop``; ``ping`` may
come anywhere and ``error`` ends the stream with a failure. Unknown events are ignored, as Anthropic asks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ailb.errors import UpstreamProtocolError
from ailb.providers import canonical
from ailb.providers.anthropic.response import finish_reason, stream_error, usage_from
from ailb.types import StreamChunk, Usage


class AnthropicStream:
    """Translation state for one streamed answer. ``finished`` turns true with ``message_stop``."""

    def __init__(self, model: str, include_usage: bool, deployment: str) -> None:
        self.deployment = deployment
        self.writer = canonical.ChunkWriter(model, include_usage)
        self.finished = False
        self._started = False
        self._finish_sent = False
        self._usage: dict[str, Any] = {}
        self._tool_index: dict[int, int] = {}  # Anthropic content block index -> OpenAI tool call index

    @property
    def complete(self) -> bool:
        return self.finished

    def feed(self, data: bytes) -> list[StreamChunk]:
        event = self._parse(data)
        kind = event.get("type")
        if kind == "error":
            raise stream_error(event.get("error"), self.deployment)
        if self.finished:
            return []
        if kind == "message_start":
            return self._message_start(event.get("message"))
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "content_block_delta":
            return self._block_delta(event)
        if kind == "message_delta":
            return self._message_delta(event)
        if kind == "message_stop":
            return self._message_stop()
        return []

    def _parse(self, data: bytes) -> Mapping[str, Any]:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise self._protocol_error("an event that is not JSON") from exc
        if not isinstance(event, dict):
            raise self._protocol_error("a malformed event")
        return event

    def _message_start(self, message: Any) -> list[StreamChunk]:
        if self._started:
            raise self._protocol_error("a second message_start")
        self._started = True
        if isinstance(message, Mapping):
            if isinstance(message.get("model"), str) and message["model"]:
                self.writer.model = message["model"]
            if isinstance(message.get("usage"), Mapping):
                self._usage.update(message["usage"])
        return [self.writer.opening()]

    def _block_start(self, event: Mapping[str, Any]) -> list[StreamChunk]:
        self._require_started()
        block = event.get("content_block")
        if not isinstance(block, Mapping):
            return []
        if block.get("type") == "text":
            text = block.get("text")
            return [self.writer.text(text)] if isinstance(text, str) and text else []
        if block.get("type") == "tool_use":
            tool_index = len(self._tool_index)
            self._tool_index[_index(event)] = tool_index
            call_id = str(block.get("id") or canonical.call_id())
            return [self.writer.tool_call_start(tool_index, call_id, str(block.get("name") or ""))]
        return []

    def _block_delta(self, event: Mapping[str, Any]) -> list[StreamChunk]:
        self._require_started()
        delta = event.get("delta")
        if not isinstance(delta, Mapping):
            return []
        if delta.get("type") == "text_delta":
            text = delta.get("text")
            return [self.writer.text(text)] if isinstance(text, str) and text else []
        if delta.get("type") == "input_json_delta":
            fragment = delta.get("partial_json")
            tool_index = self._tool_index.get(_index(event))
            if tool_index is None:
                raise self._protocol_error("tool input for a block that is not a tool call")
            return [self.writer.tool_call_arguments(tool_index, fragment)] if fragment else []
        return []

    def _message_delta(self, event: Mapping[str, Any]) -> list[StreamChunk]:
        self._require_started()
        if isinstance(event.get("usage"), Mapping):
            self._usage.update({k: v for k, v in event["usage"].items() if v is not None})
        delta = event.get("delta")
        stop_reason = delta.get("stop_reason") if isinstance(delta, Mapping) else None
        if self._finish_sent:
            return []
        self._finish_sent = True
        return [self.writer.finish(finish_reason(stop_reason))]

    def _message_stop(self) -> list[StreamChunk]:
        self._require_started()
        self.finished = True
        chunks = [] if self._finish_sent else [self.writer.finish("stop")]
        self._finish_sent = True
        chunks.append(self.writer.usage(self.usage))
        return chunks

    @property
    def usage(self) -> Usage:
        return usage_from(self._usage)

    def _require_started(self) -> None:
        if not self._started:
            raise self._protocol_error("content before message_start")

    def _protocol_error(self, what: str) -> UpstreamProtocolError:
        return UpstreamProtocolError(
            f"Deployment '{self.deployment}' sent {what} in its stream.", deployment=self.deployment
        )


def _index(event: Mapping[str, Any]) -> int:
    index = event.get("index")
    return index if isinstance(index, int) else 0
