"""Pure building blocks for adapters that translate to and from the canonical (OpenAI) chat shape.

Used by the Anthropic and Ollama translators: reading OpenAI request pieces (content parts, data URLs, tool
call arguments) and writing OpenAI answers (``chat.completion`` bodies, ``chat.completion.chunk`` SSE frames).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from ailb.contract import StreamChunk, Usage
from ailb.errors import InvalidRequestError, UpstreamProtocolError

_ROLE_DELTA = {"role": "assistant"}


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def reject_multiple_choices(body: Mapping[str, Any]) -> None:
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise InvalidRequestError("This deployment can only return one choice; set n to 1.", param="n")


def stop_list(stop: Any) -> list[str] | None:
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and stop:
        return [s for s in stop if isinstance(s, str)]
    return None


def content_parts(content: Any) -> list[dict[str, Any]]:
    """Message ``content`` as a list of OpenAI parts (a plain string becomes one text part)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [part for part in content if isinstance(part, dict)]


def parse_data_url(url: str) -> tuple[str, str] | None:
    """``(media_type, base64_data)`` of a ``data:<type>;base64,<data>`` URL, or None for other URLs."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not sep or encoding.lower() != "base64" or not data:
        raise InvalidRequestError("Image data URLs must be base64-encoded (data:<type>;base64,...).", param="messages")
    return media_type.lower(), data


def arguments_object(arguments: Any) -> dict[str, Any]:
    """A tool call's ``arguments`` (a JSON string) as the object the upstream wants."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    try:
        value = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise InvalidRequestError("A tool call's arguments are not valid JSON.", param="messages") from exc
    if not isinstance(value, dict):
        raise InvalidRequestError("A tool call's arguments must be a JSON object.", param="messages")
    return value


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def completion_body(
    *,
    model: str,
    content: str,
    tool_calls: list[dict[str, Any]],
    finish_reason: str,
    usage: Usage,
    reasoning: str = "",
    thinking_blocks: list[dict[str, Any]] | None = None,
    logprobs: list[dict[str, Any]] | None = None,
    legacy_functions: bool = False,
) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` with one choice. Reasoning goes into ``reasoning_content`` (and Anthropic's
    signed blocks into ``thinking_blocks``); with ``legacy_functions`` the first tool call is the message's
    ``function_call``."""
    message: dict[str, Any] = {"role": "assistant", "content": content if content or not tool_calls else None}
    if reasoning:
        message["reasoning_content"] = reasoning
    if thinking_blocks:
        message["thinking_blocks"] = thinking_blocks
    if tool_calls and legacy_functions:
        message["function_call"] = tool_calls[0]["function"]
        finish_reason = "function_call" if finish_reason == "tool_calls" else finish_reason
    elif tool_calls:
        message["tool_calls"] = tool_calls
    message["refusal"] = None
    choice = {"index": 0, "message": message, "logprobs": _logprobs(logprobs), "finish_reason": finish_reason}
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": usage.as_dict(),
    }


def _logprobs(content: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    return None if content is None else {"content": content, "refusal": None}


class ChunkWriter:
    """Writes one answer's ``chat.completion.chunk`` frames: same id, created and model in every chunk; the
    first choice delta carries the assistant role.

    ``index`` is the choice this writer speaks for, ``identity`` the ``(id, created)`` it shares with the writers
    of the other choices of one answer (``n > 1``); with ``legacy_functions`` the first tool call is written as
    ``function_call`` deltas and further ones are left out (the legacy format holds one call).
    """

    __slots__ = ("_role_sent", "created", "id", "include_usage", "index", "legacy_functions", "model")

    def __init__(
        self,
        model: str,
        include_usage: bool,
        *,
        index: int = 0,
        identity: tuple[str, int] | None = None,
        legacy_functions: bool = False,
    ) -> None:
        self.id, self.created = identity if identity is not None else (completion_id(), int(time.time()))
        self.model = model
        self.include_usage = include_usage
        self.index = index
        self.legacy_functions = legacy_functions
        self._role_sent = False

    def opening(self) -> StreamChunk:
        """The role-only chunk that opens an answer (nothing the client would see as content)."""
        return self._choice_chunk({"content": ""})

    def text(self, text: str, logprobs: list[dict[str, Any]] | None = None) -> StreamChunk:
        chunk = self._choice_chunk({"content": text}, logprobs=logprobs)
        chunk.text = text
        chunk.has_content = bool(text)
        return chunk

    def reasoning(self, text: str) -> StreamChunk:
        """Reasoning text: shown to the client like content, so it commits the stream too."""
        chunk = self._choice_chunk({"reasoning_content": text})
        chunk.has_content = bool(text)
        return chunk

    def thinking_block(self, block: dict[str, Any]) -> StreamChunk:
        """A whole signed (or redacted) thinking block, for the client to send back on its next turn."""
        chunk = self._choice_chunk({"thinking_blocks": [block]})
        chunk.has_content = True
        return chunk

    def tool_call_start(self, index: int, call_id: str, name: str, arguments: str = "") -> StreamChunk:
        if self.legacy_functions:
            return self._legacy_call(index, {"name": name, "arguments": arguments})
        call = {"index": index, **tool_call(call_id, name, arguments)}
        chunk = self._choice_chunk({"tool_calls": [call]})
        chunk.has_content = True
        return chunk

    def tool_call_arguments(self, index: int, fragment: str) -> StreamChunk:
        if self.legacy_functions:
            return self._legacy_call(index, {"arguments": fragment})
        chunk = self._choice_chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
        chunk.has_content = True
        return chunk

    def finish(self, reason: str) -> StreamChunk:
        if self.legacy_functions and reason == "tool_calls":
            reason = "function_call"
        chunk = self._choice_chunk({}, reason)
        chunk.finish_reason = reason
        return chunk

    def usage(self, usage: Usage) -> StreamChunk:
        frame = self._frame([], usage.as_dict()) if self.include_usage else b""
        return StreamChunk(frame=frame, usage=usage)

    def _legacy_call(self, index: int, function_call: dict[str, str]) -> StreamChunk:
        if index:
            return StreamChunk(frame=b"")
        chunk = self._choice_chunk({"function_call": function_call})
        chunk.has_content = True
        return chunk

    def _choice_chunk(
        self, delta: dict[str, Any], finish_reason: str | None = None, logprobs: list[dict[str, Any]] | None = None
    ) -> StreamChunk:
        if not self._role_sent:
            delta = {**_ROLE_DELTA, **delta}
            self._role_sent = True
        choice = {"index": self.index, "delta": delta, "logprobs": _logprobs(logprobs), "finish_reason": finish_reason}
        return StreamChunk(frame=self._frame([choice], None))

    def _frame(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if usage is not None:
            chunk["usage"] = usage
        return b"data: " + orjson.dumps(chunk) + b"\n\n"


def embedding_vectors(vectors: Any, count: int, deployment: str) -> list[list[float]]:
    """Check an upstream's embeddings: ``count`` lists of numbers, returned as floats."""
    if not isinstance(vectors, list) or len(vectors) != count:
        raise UpstreamProtocolError(
            f"Deployment '{deployment}' returned {len(vectors) if isinstance(vectors, list) else 'no'} "
            f"embeddings for {count} texts.",
            deployment=deployment,
        )
    out: list[list[float]] = []
    for vector in vectors:
        if not isinstance(vector, list) or not vector or not all(isinstance(x, int | float) for x in vector):
            raise UpstreamProtocolError(
                f"Deployment '{deployment}' returned a malformed embedding.", deployment=deployment
            )
        out.append([float(x) for x in vector])
    return out
