"""What the demo model answers: it echoes the question and says what AILB put in front of it. Pure functions."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ailb.contract import message_text
from ailb.memory.recall import TAG as MEMORY_TAG
from ailb.rag.prompt import BLOCK_OPEN

_REMEMBERED_USER = re.compile(r"^User: (.*)$", re.MULTILINE)
_SOURCE = re.compile(r'<source id="(\d+)" document="([^"]*)"')
_QUOTE_CHARS = 80


def answer(messages: Sequence[Mapping[str, Any]]) -> str:
    """``Echo: <question>``, then one line for recalled memory and one for knowledge-base sources, if any."""
    question = ""
    remembered: list[str] = []
    sources: list[str] = []
    for message in messages:
        text = message_text(message.get("content"))
        if message.get("role") == "user":
            question = text.strip()
        elif message.get("role") == "system" and f"<{MEMORY_TAG}>" in text:
            remembered.extend(_REMEMBERED_USER.findall(text))
        elif message.get("role") == "system" and BLOCK_OPEN in text:
            sources.extend(f"[{number}] {document}" for number, document in _SOURCE.findall(text))
    lines = [f"Echo from the demo model: {question or '(no question)'}"]
    if remembered:
        quoted = "; ".join(f'"{_clip(text)}"' for text in remembered)
        turns = "turn" if len(remembered) == 1 else "turns"
        lines.append(f"Memory: AILB recalled {len(remembered)} earlier {turns} of this session; you said {quoted}.")
    if sources:
        lines.append(f"Knowledge base: AILB added {len(sources)} source(s): {', '.join(sources)}.")
    return "\n".join(lines)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 1] + "…"
