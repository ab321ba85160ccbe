"""Reading the canonical (OpenAI chat) answers every surface translates from: whole completions and the
``chat.completion.chunk`` frames of a stream, as the providers wrote them and the scrubber passed them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ailb.contract import StreamChunk

_SSE_HEAD = len(b"data: ")
_SSE_TAIL = len(b"\n\n")
_BETWEEN_EVENTS = b"\n\ndata: "
_EMPTY: Mapping[str, Any] = {}


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else _EMPTY


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def choices(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [choice for choice in body.get("choices") or () if isinstance(choice, Mapping)]


def first_message(body: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The first choice of a ``chat.completion`` and its message."""
    found = choices(body)
    choice = found[0] if found else _EMPTY
    return choice, mapping(choice.get("message"))


def deltas(chunk: StreamChunk) -> list[tuple[int, Mapping[str, Any], Any]]:
    """``(choice index, delta, finish_reason)`` of each choice in a chunk's frame, in order (none for an empty
    frame). A chunk holds the events of one upstream read, each a ``data:`` line of JSON and a blank line."""
    if not chunk.frame:
        return []
    return [
        (int(choice.get("index") or 0), mapping(choice.get("delta")), choice.get("finish_reason"))
        for event in chunk.frame[_SSE_HEAD:-_SSE_TAIL].split(_BETWEEN_EVENTS)
        for choice in choices(mapping(orjson.loads(event)))
    ]
