"""Ollama's NDJSON stream as OpenAI ``chat.completion.chunk`` frames: a pure state machine.

Each line is a partial answer (``message.content`` or ``message.thinking`` fragment, with its ``logprobs``
when asked for, or whole ``message.tool_calls``) until the one with ``done: true``, which carries
``done_reason`` and the token counts. ``{"error": ...}`` ends the stream with a failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ailb.contract import StreamChunk, Usage
from ailb.errors import UpstreamProtocolError
from ailb.providers import canonical
from ailb.providers.ollama.response import (
    finish_reason,
    logprobs_from,
    stream_error,
    thinking_from,
    tool_calls_from,
    usage_from,
)


class OllamaStream:
    """Translation state for one streamed answer. ``finished`` turns true with the ``done`` line."""

    def __init__(
        self, model: str, include_usage: bool, deployment: str, *, writer: canonical.ChunkWriter | None = None
    ) -> None:
        """``writer`` (default: a fresh one for ``model``) says which choice this stream is and how to write it."""
        self.deployment = deployment
        self.writer = writer if writer is not None else canonical.ChunkWriter(model, include_usage)
        self.finished = False
        self.usage: Usage | None = None
        self._tool_calls = 0
        self._lines = 0

    @property
    def complete(self) -> bool:
        return self.finished

    def feed(self, line: bytes) -> list[StreamChunk]:
        data = self._parse(line)
        if "error" in data:
            raise stream_error(data["error"], self.deployment)
        if self.finished:
            return []
        if self._lines == 0 and isinstance(data.get("model"), str) and data["model"]:
            self.writer.model = data["model"]
        self._lines += 1
        chunks: list[StreamChunk] = []
        message = data.get("message")
        if isinstance(message, Mapping):
            chunks.extend(self._message(message, logprobs_from(data)))
        if data.get("done") is True:
            chunks.extend(self._done(data))
        return chunks

    def _message(self, message: Mapping[str, Any], logprobs: list[dict[str, Any]] | None) -> list[StreamChunk]:
        chunks: list[StreamChunk] = []
        thinking = thinking_from(message)
        if thinking:
            chunks.append(self.writer.reasoning(thinking))
        content = message.get("content")
        if isinstance(content, str) and content:
            chunks.append(self.writer.text(content, logprobs))
        for name, arguments in tool_calls_from(message):
            chunks.append(self.writer.tool_call_start(self._tool_calls, canonical.call_id(), name, arguments))
            self._tool_calls += 1
        return chunks

    def _done(self, data: Mapping[str, Any]) -> list[StreamChunk]:
        self.finished = True
        self.usage = usage_from(data)
        reason = finish_reason(data.get("done_reason"), self._tool_calls > 0)
        return [self.writer.finish(reason), self.writer.usage(self.usage)]

    def _parse(self, line: bytes) -> Mapping[str, Any]:
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise self._protocol_error("a line that is not JSON") from exc
        if not isinstance(data, dict):
            raise self._protocol_error("a malformed line")
        return data

    def _protocol_error(self, what: str) -> UpstreamProtocolError:
        return UpstreamProtocolError(
            f"Deployment '{self.deployment}' sent {what} in its stream.", deployment=self.deployment
        )
