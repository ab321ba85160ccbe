"""Tokens a text is likely to take in a chat or embedding model, when its tokenizer is not at hand."""

from __future__ import annotations

import math


def estimate_tokens(text: str) -> int:
    """About four bytes of UTF-8 per token (English prose, and more tokens per character for other scripts),
    and at least one token per word (text of short words)."""
    if not text:
        return 0
    return max(math.ceil(len(text.encode()) / 4), len(text.split()))
