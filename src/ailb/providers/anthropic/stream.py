"""Anthropic's streaming events as OpenAI ``chat.completion.chunk`` frames: a pure state machine.

Feed it each SSE event's ``data`` in order; it returns the chunks to pass on. The event sequence is
``message_start``, then per content block ``content_block_start`` / ``content_block_delta``* /
``content_block_stop``, then ``message_delta`` (stop reason, final usage) and ``message_stop``; ``ping`` may
come anywhere and ``error`` ends the stream with a failure. Unknown events are ignored, as Anthropic asks.

Thinking is streamed as ``reasoning_content`` deltas; when a thinking block ends, the whole block with its
signature follows as a ``thinking_blocks`` delta (a redacted block as soon as it starts), so a client can send
it back. A tool call whose input stayed empty gets ``"{}"`` as its arguments, as in a whole answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ailb.contract import StreamChunk, Usage
from ailb.errors import UpstreamProtocolError
from ailb.providers import canonical
from ailb.providers.anthropic.response import finish_reason, stream_error, usage_from
from ailb.providers.anthropic.thinking import block_for_client


class AnthropicStream:
    """Translation state for one streamed answer. ``finished`` turns true with ``message_stop``."""

    def __init__(
        self, model: str, include_usage: bool, deployment: str, *, writer: canonical.ChunkWriter | None = None
    ) -> None:
        """``writer`` (default: a fresh one for ``model``) says which choice this stream is and how to write it."""
        self.deployment = deployment
        self.writer = writer if writer is not None else canonical.ChunkWriter(model, include_usage)
        self.finished = False
        self._started = False
        self._finish_sent = False
        self._usage: dict[str, Any] = {}
        self._tool_index: dict[int, int] = {}  # Anthropic content block index -> OpenAI tool call index
        self._tool_input_seen: set[int] = set()  # tool calls whose arguments were written
        self._thinking: dict[int, list[str]] = {}  # thinking block index -> [text, signature]

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
        if kind == "content_block_stop":
            return self._block_stop(event)
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
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            return [self.writer.text(text)] if isinstance(text, str) and text else []
        if kind == "tool_use":
            return [self._tool_start(_index(event), block)]
        if kind == "thinking":
            self._thinking[_index(event)] = [str(block.get("thinking") or ""), str(block.get("signature") or "")]
            text = block.get("thinking")
            return [self.writer.reasoning(text)] if isinstance(text, str) and text else []
        if kind == "redacted_thinking":
            return [self.writer.thinking_block(block_for_client(block))]
        return []

    def _tool_start(self, block_index: int, block: Mapping[str, Any]) -> StreamChunk:
        tool_index = len(self._tool_index)
        self._tool_index[block_index] = tool_index
        call_id = str(block.get("id") or canonical.call_id())
        given = block.get("input")
        arguments = orjson.dumps(given).decode() if isinstance(given, Mapping) and given else ""
        if arguments:
            self._tool_input_seen.add(tool_index)
        return self.writer.tool_call_start(tool_index, call_id, str(block.get("name") or ""), arguments)

    def _block_delta(self, event: Mapping[str, Any]) -> list[StreamChunk]:
        self._require_started()
        delta = event.get("delta")
        if not isinstance(delta, Mapping):
            return []
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            return [self.writer.text(text)] if isinstance(text, str) and text else []
        if kind == "input_json_delta":
            fragment = delta.get("partial_json")
            tool_index = self._tool_index.get(_index(event))
            if tool_index is None:
                raise self._protocol_error("tool input for a block that is not a tool call")
            if not fragment:
                return []
            self._tool_input_seen.add(tool_index)
            return [self.writer.tool_call_arguments(tool_index, fragment)]
        if kind in ("thinking_delta", "signature_delta"):
            return self._thinking_delta(_index(event), delta)
        return []

    def _thinking_delta(self, block_index: int, delta: Mapping[str, Any]) -> list[StreamChunk]:
        block = self._thinking.get(block_index)
        if block is None:
            raise self._protocol_error("thinking for a block that is not a thinking block")
        if delta.get("type") == "signature_delta":
            block[1] += str(delta.get("signature") or "")
            return []
        text = delta.get("thinking")
        if not isinstance(text, str) or not text:
            return []
        block[0] += text
        return [self.writer.reasoning(text)]

    def _block_stop(self, event: Mapping[str, Any]) -> list[StreamChunk]:
        self._require_started()
        block_index = _index(event)
        thinking = self._thinking.pop(block_index, None)
        if thinking is not None:
            text, signature = thinking
            return [self.writer.thinking_block({"type": "thinking", "thinking": text, "signature": signature})]
        tool_index = self._tool_index.get(block_index)
        if tool_index is not None and tool_index not in self._tool_input_seen:
            self._tool_input_seen.add(tool_index)
            return [self.writer.tool_call_arguments(tool_index, "{}")]
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
