"""Scrubbing the configured secrets out of model answers, whole and streamed.

An upstream that echoes a credential it knows (its own key, or any secret of this gateway it was handed) must
not pass it to a client through an answer, nor into conversation memory. Only the exact configured secrets are
masked here, in any casing, behind JSON ``\\uXXXX`` escapes, and split across stream chunks; credential *shapes*
(``Bearer …``, ``sk-…``) are left alone, because answers legitimately hold code that shows them.

The cost on the hot path is one search of each frame's bytes for the secrets and a look at the last character
of each chunk's text. A frame is parsed and rewritten only when a secret is in it. A chunk is held back only
while its text ends with the beginning of a secret, until the next chunk shows whether the rest follows; the
answer's text (``content``) is followed across chunks, other fields (tool-call arguments) chunk by chunk.
Frames are OpenAI chunks, or Anthropic's own events on their way to a Messages client (``event:`` line first,
the text in a ``text_delta``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from ailb.contract import Completion, StreamChunk
from ailb.redaction import MASK, SecretSet

_SSE_HEAD = b"data: "
_SSE_TAIL = b"\n\n"
_FRAME_STARTS = (_SSE_HEAD, b"event: ")
_HIDING = (b"u", b"/")  # what follows a backslash in the escapes that can write a secret in other bytes
_BACKSLASHES_ONE_BY_ONE = 16


def scrub_completion(completion: Completion, secrets: SecretSet) -> Completion:
    """``completion`` without the secrets; its ``raw`` bytes are set either way (the HTTP layer sends them)."""
    raw = completion.raw if completion.raw is not None else orjson.dumps(completion.body)
    if secrets.empty or not _json_holds_secret(raw, secrets):
        return completion if completion.raw is not None else replace(completion, raw=raw)
    body = _masked(completion.body, secrets)
    return replace(completion, body=body, text=secrets.mask(completion.text), raw=orjson.dumps(body))


class StreamScrubber:
    """Scrubs one streamed answer's chunks, in order. ``feed`` what the vendor's state machine produced, and
    ``flush`` once the answer is whole to release a chunk still held back."""

    __slots__ = ("_held", "_secrets")

    def __init__(self, secrets: SecretSet) -> None:
        self._secrets = secrets
        self._held: list[StreamChunk] = []

    def feed(self, chunks: list[StreamChunk]) -> list[StreamChunk]:
        secrets = self._secrets
        if secrets.empty:
            return chunks
        if not self._held and _all_pass(chunks, secrets):
            return chunks
        out: list[StreamChunk] = []
        for chunk in chunks:
            out.extend(self._accept(chunk))
        return out

    def passes(self, joined: StreamChunk, outside_text: bytes | None = None) -> bool:
        """Whether ``feed`` would hand on unchanged, holding nothing back, the chunks whose frames and texts
        ``joined`` joins (``_all_pass``'s test of a read's chunks together; an escape in the frames says no).
        ``outside_text``: the frames' bytes but for parts that are the text's own (enclosed by quotes, no escape),
        searched instead of the frames when no secret holds a quote or a line break (such a secret in the frames
        is then in these bytes or in the text)."""
        secrets = self._secrets
        if secrets.empty:
            return True
        frame, text = joined.frame, joined.text
        if outside_text is not None and secrets.quoteless:
            frame = outside_text
        if self._held or _escaped(frame) or secrets.in_bytes(frame):
            return False
        return not secrets.in_text(text) and not secrets.ends_with_prefix(text)

    def flush(self) -> list[StreamChunk]:
        held, self._held = self._held, []
        return held

    def _accept(self, chunk: StreamChunk) -> list[StreamChunk]:
        secrets = self._secrets
        if chunk.frame and _json_holds_secret(chunk.frame, secrets):
            chunk = _scrubbed_frame(chunk, secrets)
        if not self._held:
            if chunk.text and secrets.ends_with_prefix(chunk.text):
                self._held = [chunk]
                return []
            return [chunk]
        group = [*self._held, chunk]
        self._held = []
        if not chunk.text:
            # A chunk without text leaves the held text as it was: keep holding, unless the text is over.
            if chunk.has_content or chunk.finish_reason is not None or chunk.usage is not None:
                return group
            self._held = group
            return []
        group = _mask_across(group, secrets)
        if secrets.ends_with_prefix("".join(c.text for c in group)):
            self._held = group
            return []
        return group


def _all_pass(chunks: list[StreamChunk], secrets: SecretSet) -> bool:
    """``_passes`` for every chunk, or nothing for the scrubber to change; the chunks of one upstream read are
    searched at once: no secret (and no escape) in their frames together means none in any one of them, and a
    secret their texts spell together is in their joined text. A text ending with the beginning of a secret that
    the next texts do not complete changes nothing either, so only the joined text's end is looked at."""
    if len(chunks) > 1:
        joined = b"".join([chunk.frame for chunk in chunks])
        if not _escaped(joined) and not secrets.in_bytes(joined):
            text = "".join([chunk.text for chunk in chunks])
            return not secrets.in_text(text) and not secrets.ends_with_prefix(text)
    return all(_passes(chunk, secrets) for chunk in chunks)


def _passes(chunk: StreamChunk, secrets: SecretSet) -> bool:
    """The common case: no secret in the frame, and the text does not end with the beginning of one."""
    if chunk.text and secrets.ends_with_prefix(chunk.text):
        return False
    return not (chunk.frame and _json_holds_secret(chunk.frame, secrets))


def _json_holds_secret(data: bytes, secrets: SecretSet) -> bool:
    """Whether JSON ``data`` (or an SSE ``data:`` frame of it) shows a secret once decoded."""
    if secrets.in_bytes(data):
        return True
    if not _escaped(data):
        return False
    # Escaped: compare the decoded form (orjson writes no escapes but the mandatory ones). Answers and frames
    # reach this point already parsed once by the vendor's translator, so they are JSON.
    payload = _split_frame(data)[1] if data.startswith(_FRAME_STARTS) else data
    return secrets.in_bytes(orjson.dumps(orjson.loads(payload)))


def _escaped(data: bytes) -> bool:
    """Whether JSON ``data`` holds a ``\\u`` or ``\\/`` escape, which can write a secret in other bytes. A search
    for two bytes reads every byte, a search for one skips through: the first backslashes (an answer's few line
    breaks) are looked at one by one."""
    at = data.find(b"\\")
    for _ in range(_BACKSLASHES_ONE_BY_ONE):
        if at < 0:
            return False
        if data[at + 1 : at + 2] in _HIDING:
            return True
        at = data.find(b"\\", at + 1)
    return at >= 0 and (b"\\u" in data or b"\\/" in data)


def _split_frame(frame: bytes) -> tuple[bytes, bytes, bytes]:
    """An SSE frame (``data: {...}``, or an Anthropic event passed through: ``event: name`` first) as its head up
    to the JSON, the JSON, and the tail."""
    start = frame.index(_SSE_HEAD) + len(_SSE_HEAD)
    return frame[:start], frame[start : -len(_SSE_TAIL)], _SSE_TAIL


def _scrubbed_frame(chunk: StreamChunk, secrets: SecretSet) -> StreamChunk:
    head, payload, tail = _split_frame(chunk.frame)
    frame = head + orjson.dumps(_masked(orjson.loads(payload), secrets)) + tail
    return replace(chunk, frame=frame, text=secrets.mask(chunk.text))


def _masked(value: Any, secrets: SecretSet) -> Any:
    """``value`` (parsed JSON) with the secrets masked in every string, keys included."""
    if isinstance(value, str):
        return secrets.mask(value)
    if isinstance(value, dict):
        return {secrets.mask(k): _masked(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(item, secrets) for item in value]
    return value


def _mask_across(group: list[StreamChunk], secrets: SecretSet) -> list[StreamChunk]:
    """Mask secrets that the texts of consecutive chunks spell together; each chunk keeps what is its own."""
    texts = [chunk.text for chunk in group]
    joined = "".join(texts)
    spans = secrets.spans(joined)
    if not spans:
        return group
    out = []
    for chunk, text in zip(group, _cut(joined, texts, spans), strict=True):
        out.append(chunk if text == chunk.text else _with_text(chunk, text))
    return out


def _cut(joined: str, texts: list[str], spans: list[tuple[int, int]]) -> list[str]:
    """Each text with the parts of ``joined`` inside ``spans`` removed; a span's mask goes where it starts."""
    out = []
    offset = 0
    for text in texts:
        end = offset + len(text)
        kept: list[str] = []
        position = offset
        for start, stop in spans:
            if stop <= offset or start >= end:
                continue
            if start >= offset:
                kept += [joined[position:start], MASK]
            position = min(stop, end)
        kept.append(joined[position:end])
        out.append("".join(kept))
        offset = end
    return out


def _with_text(chunk: StreamChunk, text: str) -> StreamChunk:
    """``chunk`` whose text is ``text``. In an OpenAI chunk that is ``delta.content`` of choice 0, or of the frame's
    only choice (one choice of an answer with ``n > 1``); in an Anthropic event, a ``text_delta``'s ``text``."""
    head, raw, tail = _split_frame(chunk.frame)
    payload = orjson.loads(raw)
    choices = [c for c in payload.get("choices") or () if isinstance(c, dict) and isinstance(c.get("delta"), dict)]
    chosen = choices if len(choices) == 1 else [c for c in choices if c.get("index", 0) == 0]
    for choice in chosen[:1]:
        choice["delta"]["content"] = text
    delta = payload.get("delta")
    if not choices and isinstance(delta, dict) and delta.get("type") == "text_delta":
        delta["text"] = text
    return replace(chunk, frame=head + orjson.dumps(payload) + tail, text=text)
