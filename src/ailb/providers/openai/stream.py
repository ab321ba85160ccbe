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
            chunk, done = read_events(datas, self.include_usage)
        except Exception:  # whatever it is, ``feed`` raises it in its place among the events
            return None
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
    return _chunk_of([data], [obj], include_usage, deployment)


def read_events(datas: list[bytes], include_usage: bool) -> tuple[StreamChunk | None, bool]:
    """``chunk_from_event`` for each event up to ``[DONE]``, joined into one chunk as the relay joins them (None
    when there is no event), and whether ``[DONE]`` came. Raises for an event ``chunk_from_event`` refuses, though
    not necessarily the same error (``feed_read`` leaves those to it)."""
    done = DONE in datas
    if done:
        datas = datas[: datas.index(DONE)]
    if not datas:
        return None, done
    loads = orjson.loads
    return _chunk_of(datas, [loads(data) for data in datas], include_usage, ""), done


def _chunk_of(datas: list[bytes], objs: list[Any], include_usage: bool, deployment: str) -> StreamChunk:
    """The events ``datas`` (parsed: ``objs``) as one chunk: their frames (all but a usage-only event the client
    did not ask for), the text of their first choice, whether any was content (text, a tool call, a refusal or
    reasoning), the last usage and finish reason."""
    kept: list[bytes] = []
    text = ""
    has_content = False
    usage = finish_reason = None
    for data, obj in zip(datas, objs, strict=True):
        if type(obj) is not dict:
            raise UpstreamProtocolError(f"Deployment '{deployment}' sent a malformed chunk.", deployment=deployment)
        if "error" in obj:
            raise stream_error(obj["error"], deployment)
        choices = obj.get("choices")
        reported = obj.get("usage")
        if reported:
            usage = usage_from(reported)
        if choices:
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
        elif reported and not include_usage:
            continue
        kept.append(data)
    frame = b"data: " + b"\n\ndata: ".join(kept) + b"\n\n" if kept else b""
    return StreamChunk(frame, text, has_content, usage, finish_reason)


def stream_error(error: Any, deployment: str) -> UpstreamError:
    """``data: {"error": {...}}`` in the middle of a stream: the upstream's message is detail for the log."""
    message = error.get("message") if isinstance(error, dict) else error
    return stream_failure(deployment, message)
