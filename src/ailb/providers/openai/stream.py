"""An OpenAI-compatible stream, passed through: a pure state machine that reads what the gateway needs.

Each event's bytes become the client's frame unchanged; the gateway reads only the content (for memory), the
usage (for stats and cost) and the finish reason. ``[DONE]`` ends the stream; an answer whose choice finished
is complete even without it (some servers omit it). ``data: {"error": ...}`` ends the stream with a failure.

Reading a whole upstream read at once (``feed_read``, the relay's common case), the events that differ from an
earlier one of the same stream only in their text are read without parsing them again (``ContentTemplate``).
"""

from __future__ import annotations

import re
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

    __slots__ = ("_finish_seen", "_template", "deployment", "finished", "include_usage")

    def __init__(self, include_usage: bool, deployment: str) -> None:
        self.include_usage = include_usage
        self.deployment = deployment
        self.finished = False
        self._finish_seen = False
        self._template = ContentTemplate()

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

    def feed_read(
        self, datas: list[bytes], passes: Callable[[StreamChunk, bytes], bool]
    ) -> list[StreamChunk] | None:
        """The events of one upstream read as the one chunk ``feed`` event by event and then ``relay.joined`` make
        of them (none for a read without events), when the read is ordinary and ``passes`` takes that chunk (and
        the bytes of its frame outside the texts read through the template, which it may search instead of the
        frame: see ``_chunk_of``); the state then moved on. None, with nothing changed, for anything else (an
        error, a malformed event): feeding the events one at a time then says what that is."""
        template = self._template.copy()
        try:
            read, done = read_events(datas, self.include_usage, template)
        except Exception:  # whatever it is, ``feed`` raises it in its place among the events
            return None
        chunks: list[StreamChunk] = []
        if read is not None:
            chunk, outside_text = read
            if not passes(chunk, outside_text):
                return None
            self._finish_seen = self._finish_seen or chunk.finish_reason is not None
            chunks.append(chunk)
        self.finished = self.finished or done
        self._template = template
        return chunks


def chunk_from_event(data: bytes, include_usage: bool, deployment: str) -> StreamChunk:
    """Read what the gateway needs from one upstream chunk and pass its bytes through untouched."""
    return _chunk_of([data], include_usage, deployment, _NO_TEMPLATE)[0]


def read_events(
    datas: list[bytes], include_usage: bool, template: ContentTemplate
) -> tuple[tuple[StreamChunk, bytes] | None, bool]:
    """``chunk_from_event`` for each event up to ``[DONE]``, joined into one chunk as the relay joins them, with
    ``_chunk_of``'s bytes around the texts (None when there is no event), and whether ``[DONE]`` came. Raises for
    an event ``chunk_from_event`` refuses, though not necessarily the same error (``feed_read`` leaves those to
    it). ``template``: the stream's, which reads the events it fits without parsing them and learns from those it
    does not."""
    done = DONE in datas
    if done:
        datas = datas[: datas.index(DONE)]
    if not datas:
        return None, done
    return _chunk_of(datas, include_usage, "", template), done


def _chunk_of(
    datas: list[bytes], include_usage: bool, deployment: str, template: ContentTemplate
) -> tuple[StreamChunk, bytes]:
    """The events ``datas`` as one chunk: their frames (all but a usage-only event the client did not ask for),
    the text of their first choice, whether any was content (text, a tool call, a refusal or reasoning), the last
    usage and finish reason. The events that fit ``template`` are read without parsing them.

    And the bytes of the frame but those texts: the events not read through the template, and the template's head
    and tail, each after the ``data: `` that comes before an event. A string holding no quote and no line break
    that is in the frame is in them or in the text (one event's text is enclosed by quotes in it; events are
    separated by line breaks)."""
    head, tail = template.head, template.tail
    around = [head, tail]
    text_at, text_end = len(head), -len(tail)
    not_literal = _NOT_LITERAL.search
    kept: list[bytes] = []
    texts: list[str] = []
    has_content = False
    usage = finish_reason = None
    for data in datas:
        if head and data.startswith(head) and data.endswith(tail):
            raw = data[text_at:text_end]  # empty when the head and the tail overlap
            if raw and not not_literal(raw):
                try:
                    texts.append(raw.decode())
                except UnicodeDecodeError:
                    pass  # not JSON: the parse below says so
                else:
                    kept.append(data)
                    has_content = True
                    continue
        around.append(data)
        obj = _event_object(data, deployment)
        choices = obj.get("choices")
        reported = obj.get("usage")
        if reported:
            usage = usage_from(reported)
        if choices:
            has_content, finished = _read_choices(choices, texts, has_content)
            finish_reason = finished or finish_reason
            if template.tries:
                template.learn(data, obj)
                head, tail = template.head, template.tail  # learnt from ``data``, in ``around`` already
                text_at, text_end = len(head), -len(tail)
        elif reported and not include_usage:
            continue
        kept.append(data)
    frame = b"data: " + b"\n\ndata: ".join(kept) + b"\n\n" if kept else b""
    outside_text = b"data: " + b"\n\ndata: ".join(around)
    return StreamChunk(frame, "".join(texts), has_content, usage, finish_reason), outside_text


def _read_choices(choices: Any, texts: list[str], has_content: bool) -> tuple[bool, str | None]:
    """An event's choices read: the first choice's text added to ``texts``; whether the answer has content now,
    and the event's last finish reason."""
    finish_reason = None
    for choice in choices:
        delta = choice.get("delta")
        if delta:
            content = delta.get("content")
            if content:
                if choice.get("index", 0) == 0:
                    texts.append(content)
                has_content = True
            elif not has_content:
                has_content = any(delta.get(key) for key in _CONTENT_KEYS)
        finish_reason = choice.get("finish_reason") or finish_reason
    return has_content, finish_reason


def _event_object(data: bytes, deployment: str) -> dict[str, Any]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError(
            f"Deployment '{deployment}' sent a stream chunk that is not JSON.", deployment=deployment
        ) from exc
    if type(obj) is not dict:
        raise UpstreamProtocolError(f"Deployment '{deployment}' sent a malformed chunk.", deployment=deployment)
    if "error" in obj:
        raise stream_error(obj["error"], deployment)
    return obj


def stream_error(error: Any, deployment: str) -> UpstreamError:
    """``data: {"error": {...}}`` in the middle of a stream: the upstream's message is detail for the log."""
    message = error.get("message") if isinstance(error, dict) else error
    return stream_failure(deployment, message)


# What a JSON string's bytes must not hold to be the text they spell: a quote, a backslash (an escape), a control byte.
_NOT_LITERAL = re.compile(rb'["\\\x00-\x1f]')
_LEARNING_TRIES = 4  # events a stream may learn from (not its first); one whose events never fit stops trying


class ContentTemplate:
    """An OpenAI stream's content event with its text cut out: ``head`` + text + ``tail``.

    Learned from a parsed event that is one plain content delta (one choice, index 0, no finish reason, usage or
    error) with no backslash anywhere: every quote in it then delimits a string and every string is its bytes, so
    the text's JSON string is the quoted text, and where that occurs once in the event it is the cut. Then every
    event that is ``head``, bytes without a quote, backslash or control byte that are UTF-8, and ``tail`` is that
    same event with those bytes as its text: JSON reads the head the same way whatever follows it and such bytes
    as one string's characters, so the event is valid and says nothing else. Those events (most of a stream: its
    id, model and creation time stay) are read with a slice and a decode instead of a parse and a walk."""

    __slots__ = ("head", "tail", "tries")

    def __init__(self, head: bytes = b"", tail: bytes = b"", tries: int = _LEARNING_TRIES) -> None:
        self.head = head
        self.tail = tail
        self.tries = tries

    def copy(self) -> ContentTemplate:
        return ContentTemplate(self.head, self.tail, self.tries)

    def learn(self, data: bytes, obj: dict[str, Any]) -> None:
        """Take ``data`` (parsed: ``obj``) as the template if it is one plain content delta. Not a stream's first
        event: that one often says more than the rest (the role), so no later event would fit it."""
        self.tries -= 1
        if self.tries == _LEARNING_TRIES - 1:
            return
        text = _plain_text(obj)
        if text is None or b"\\" in data:
            return
        raw = text.encode()
        token = b'"' + raw + b'"'
        if data.count(token) != 1:
            return
        at = data.find(token) + 1
        self.head, self.tail = data[:at], data[at + len(raw) :]


_NO_TEMPLATE = ContentTemplate(tries=0)


def _plain_text(obj: dict[str, Any]) -> str | None:
    """The text of an event that is one choice's plain content delta and nothing else the gateway reads (an event
    with an error never gets here: ``_event_object`` raised for it)."""
    choices = obj.get("choices")
    if obj.get("usage") is not None or type(choices) is not list or len(choices) != 1:
        return None
    choice = choices[0]
    if type(choice) is not dict or choice.get("index", 0) != 0 or choice.get("finish_reason"):
        return None
    delta = choice.get("delta")
    content = delta.get("content") if type(delta) is dict else None
    return content if type(content) is str and content else None
