"""The token estimate used where a model's tokenizer is not at hand, and the text cut to an estimate."""

from __future__ import annotations

import pytest

from ailb.token_estimate import estimate_tokens, leading


def test_a_text_within_the_estimate_is_kept_whole() -> None:
    assert leading("a short question", 4) == "a short question"  # 16 bytes
    assert leading("", 0) == ""


@pytest.mark.parametrize("tokens", [1, 2, 5, 20])
def test_a_longer_text_is_cut_to_its_start_within_the_estimate(tokens: int) -> None:
    text = "The garden faces north and the roses need shade. " * 10
    start = leading(text, tokens)
    assert text.startswith(start)
    assert estimate_tokens(start) <= tokens
    assert estimate_tokens(text[: len(start) + 6]) > tokens  # no more than a word short of the estimate


def test_words_count_as_a_token_each_and_multibyte_text_is_cut_between_characters() -> None:
    assert leading("a b c d e f g h", 3) == "a b c "
    text = "über " * 40
    start = leading(text, 5)
    assert text.startswith(start) and estimate_tokens(start) <= 5
