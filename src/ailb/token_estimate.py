"""Tokens a text is likely to take in a chat or embedding model, when its tokenizer is not at hand."""

from __future__ import annotations

import math
import re

_WORD = re.compile(r"\S+")


def estimate_tokens(text: str) -> int:
    """About four bytes of UTF-8 per token (English prose, and more tokens per character for other scripts),
    and at least one token per word (text of short words)."""
    if not text:
        return 0
    return max(math.ceil(len(text.encode()) / 4), len(text.split()))


def leading(text: str, max_tokens: int) -> str:
    """The start of ``text`` whose estimate is at most ``max_tokens``: ``text`` itself when it is that short, else
    cut to four bytes a token and one word a token (at a character boundary)."""
    if estimate_tokens(text) <= max_tokens:
        return text
    head = text.encode()[: max(0, max_tokens) * 4].decode(errors="ignore")
    starts = [match.start() for match in _WORD.finditer(head)]
    return head[: starts[max_tokens]] if len(starts) > max_tokens >= 0 else head
