"""Anthropic Messages passed through: a client of ``/v1/messages`` gets Anthropic's own answer, byte for byte.

Nothing is translated: the answer body and every stream event reach the client as Anthropic wrote them (after
the configured secrets are scrubbed from them). What the gateway reads along the way is what it needs for
itself: the answer's text (memory), its usage (stats, cost, per-key limits) and its stop reason, and whether an
event carries content (until the first one, failover to another deployment is still possible).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ailb.contract import Completion, StreamChunk, Usage
from ailb.errors import UpstreamProtocolError
from ailb.providers.anthropic.response import finish_reason, stream_error, usage_from

CONTENT_BLOCKS_WITHOUT_TEXT = frozenset({"tool_use", "server_tool_use", "redacted_thinking"})
CONTENT_DELTAS = frozenset({"input_json_delta", "thinking_delta", "citations_delta"})


def native_completion(data: Any, raw: bytes, deployment: str) -> Completion:
    """A whole Messages answer as it came: ``raw`` is passed on; text and usage are read for the gateway."""
    if not isinstance(data, Mapping) or not isinstance(data.get("content"), list):
        raise UpstreamProtocolError(
            f"Deployment '{deployment}' returned a message without content.", deployment=deployment
        )
    text = "".join(
        str(block.get("text") or "")
        for block in data["content"]
        if isinstance(block, Mapping) and block.get("type") == "text"
    )
    return Completion(body=dict(data), usage=usage_from(data.get("usage")), text=text, raw=raw)


class NativeStream:
    """One streamed Messages answer, passed through event by event (a ``relay`` state machine).

    Each event becomes one chunk whose frame is the event as Anthropic framed it (``event:`` and ``data:``
    lines). ``message_start`` gives the input usage, ``message_delta`` the output usage and the stop reason;
    ``message_stop`` ends the answer; an ``error`` event ends it with a failure (the client then gets the
    gateway's own error event).
    """

    def __init__(self, deployment: str) -> None:
        self.deployment = deployment
        self.finished = False
        self._input: Mapping[str, Any] = {}

    @property
    def complete(self) -> bool:
        return self.finished

    def feed(self, data: bytes) -> list[StreamChunk]:
        event = self._parse(data)
        kind = event.get("type")
        if kind == "error":
            raise stream_error(event.get("error"), self.deployment)
        if self.finished or not isinstance(kind, str):
            return []
        chunk = StreamChunk(frame=b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n")
        if kind == "message_start":
            message = event.get("message")
            usage = message.get("usage") if isinstance(message, Mapping) else None
            self._input = usage if isinstance(usage, Mapping) else {}
        elif kind == "content_block_start":
            block = event.get("content_block")
            chunk.has_content = isinstance(block, Mapping) and block.get("type") in CONTENT_BLOCKS_WITHOUT_TEXT
        elif kind == "content_block_delta":
            self._delta(event.get("delta"), chunk)
        elif kind == "message_delta":
            self._message_delta(event, chunk)
        elif kind == "message_stop":
            self.finished = True
        return [chunk]

    def _delta(self, delta: Any, chunk: StreamChunk) -> None:
        if not isinstance(delta, Mapping):
            return
        if delta.get("type") == "text_delta":
            chunk.text = str(delta.get("text") or "")
            chunk.has_content = bool(chunk.text)
        elif delta.get("type") in CONTENT_DELTAS:
            chunk.has_content = True

    def _message_delta(self, event: Mapping[str, Any], chunk: StreamChunk) -> None:
        delta = event.get("delta")
        reason = delta.get("stop_reason") if isinstance(delta, Mapping) else None
        chunk.finish_reason = finish_reason(reason)
        usage = event.get("usage")
        # message_delta's counts are cumulative; counts it leaves out keep their message_start value.
        given = {k: v for k, v in usage.items() if v is not None} if isinstance(usage, Mapping) else {}
        merged = {**self._input, **given}
        chunk.usage = usage_from(merged) if merged else Usage()

    def _parse(self, data: bytes) -> Mapping[str, Any]:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise self._protocol_error("an event that is not JSON") from exc
        if not isinstance(event, dict):
            raise self._protocol_error("a malformed event")
        return event

    def _protocol_error(self, what: str) -> UpstreamProtocolError:
        name = self.deployment
        return UpstreamProtocolError(f"Deployment '{name}' sent {what} in its stream.", deployment=name)


def input_tokens(data: Any, deployment: str) -> int:
    """The count of a ``/v1/messages/count_tokens`` answer."""
    count = data.get("input_tokens") if isinstance(data, Mapping) else None
    if not isinstance(count, int) or count < 0:
        raise UpstreamProtocolError(f"Deployment '{deployment}' returned no token count.", deployment=deployment)
    return count
