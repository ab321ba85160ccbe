"""An OpenAI-compatible stream, passed through: a pure state machine that reads what the gateway needs.

Each event's bytes become the client's frame unchanged; the gateway reads only the content (for memory), the
usage (for stats and cost) and the finish reason. ``[DONE]`` ends the stream; an answer whose choice finished
is complete even without it (some servers omit it). ``data: {"error": ...}`` ends the stream with a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from ailb.contract import StreamChunk
from ailb.errors import UpstreamError, UpstreamProtocolError
from ailb.providers.errors import stream_failure
from ailb.providers.openai.response import usage_from

DONE = b"[DONE]"
# Besides ``content``, the deltas that are an answer (and so commit the stream to its deployment).
_CONTENT_KEYS = ("tool_calls", "refusal", "function_call", "reasoning_content", "reasoning")


class OpenAIStream:
    """Translation state for one streamed answer. ``finished`` turns true with ``[DONE]``."""

    __slots__ = ("_finish_seen", "deployment", "finished", "include_usage")

    def __init__(self, include_usage: bool, deployment: str) -> None:
        self.include_usage = include_usage
        self.deployment = deployment
        self.finished = False
        self._finish_seen = False

    @property
    def complete(self) -> bool:
        return self.finished or self._finish_seen

    def feed(self, data: bytes) -> list[StreamChunk]:
        if data == DONE:
            self.finished = True
            return []
        chunk = chunk_from_event(data, self.include_usage, self.deployment)
        self._finish_seen = self._finish_seen or chunk.finish_reason is not None
        return [chunk]

    def feed_read(self, datas: list[bytes], passes: Callable[[StreamChunk], bool]) -> list[StreamChunk] | None:
        """The events of one upstream read as the one chunk ``feed`` event by event and then ``relay.joined`` make
        of them (none for a read without events), when the read is ordinary and ``passes`` takes that chunk; the
        state then moved on. None, with nothing changed, for anything else (an error, a malformed event): feeding
        the events one at a time then says what that is."""
        try:
            read = read_events(datas, self.include_usage)
        except Exception:  # whatever it is, ``feed`` raises it in its place among the events
            return None
        if read is None:
            return None
        chunk, done = read
        if chunk is not None:
            if not passes(chunk):
                return None
            self._finish_seen = self._finish_seen or chunk.finish_reason is not None
        self.finished = self.finished or done
        return [] if chunk is None else [chunk]


def chunk_from_event(data: bytes, include_usage: bool, deployment: str) -> StreamChunk:
    """Read what the gateway needs from one upstream chunk and pass its bytes through untouched."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError(
            f"Deployment '{deployment}' sent a stream chunk that is not JSON.", deployment=deployment
        ) from exc
    if not isinstance(obj, dict):
        raise UpstreamProtocolError(f"Deployment '{deployment}' sent a malformed chunk.", deployment=deployment)
    if "error" in obj:
        raise stream_error(obj["error"], deployment)
    choices = obj.get("choices")
    reported = obj.get("usage")
    usage = usage_from(reported) if reported else None
    text, has_content, finish_reason = _read_choices(choices, "", False, None) if choices else ("", False, None)
    if not choices and usage is not None and not include_usage:
        return StreamChunk(b"", text, has_content, usage, finish_reason)
    return StreamChunk(b"data: " + data + b"\n\n", text, has_content, usage, finish_reason)


def _read_choices(
    choices: list[Any], text: str, has_content: bool, finish_reason: str | None
) -> tuple[str, bool, str | None]:
    """An event's choices added to what came before: the first choice's text, whether anything was content (text,
    a tool call, a refusal or reasoning), the last finish reason."""
    for choice in choices:
        delta = choice.get("delta")
        if delta:
            content = delta.get("content")
            if content:
                if choice.get("index", 0) == 0:
                    text += content
                has_content = True
            elif not has_content:
                has_content = any(delta.get(key) for key in _CONTENT_KEYS)
        finish_reason = choice.get("finish_reason") or finish_reason
    return text, has_content, finish_reason


def read_events(datas: list[bytes], include_usage: bool) -> tuple[StreamChunk | None, bool] | None:
    """``chunk_from_event`` for each event up to ``[DONE]``, joined into one chunk as the relay joins them (None
    when there is no event), and whether ``[DONE]`` came; None when an event is an error or not a JSON object."""
    kept: list[bytes] = []
    text = ""
    has_content = done = False
    usage = finish_reason = None
    for data in datas:
        if data == DONE:
            done = True
            break
        obj = orjson.loads(data)
        if type(obj) is not dict or "error" in obj:
            return None
        choices = obj.get("choices")
        reported = obj.get("usage")
        if reported:
            usage = usage_from(reported)
        if choices:
            text, has_content, finish_reason = _read_choices(choices, text, has_content, finish_reason)
        if choices or not reported or include_usage:
            kept.append(data)
    if not datas or datas[0] == DONE:
        return None, done
    frame = b"data: " + b"\n\ndata: ".join(kept) + b"\n\n" if kept else b""
    return StreamChunk(frame, text, has_content, usage, finish_reason), done


def stream_error(error: Any, deployment: str) -> UpstreamError:
    """``data: {"error": {...}}`` in the middle of a stream: the upstream's message is detail for the log."""
    message = error.get("message") if isinstance(error, dict) else error
    return stream_failure(deployment, message)
