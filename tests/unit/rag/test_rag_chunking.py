from __future__ import annotations

import itertools
import re

import pytest

from ailb.rag.chunking import Chunker


def words(text: str) -> int:
    """Whitespace words plus a fixed overhead of 2, like a model's [CLS]/[SEP]."""
    return len(text.split()) + 2


def sentence(topic: str, n: int) -> str:
    return f"The {topic} rule number {n} says something specific about {topic} matters."


def test_short_paragraphs_are_packed_together_and_kept_whole() -> None:
    text = "First paragraph is short.\n\nSecond paragraph is short too.\n\nThird one as well."
    chunks = Chunker(words, max_tokens=50, overlap_tokens=0).split(text)
    assert chunks == ["First paragraph is short.\n\nSecond paragraph is short too.\n\nThird one as well."]


def test_a_paragraph_that_does_not_fit_the_rest_of_a_chunk_starts_the_next_one() -> None:
    first = " ".join(sentence("vacation", n) for n in range(3))  # 30 words
    second = " ".join(sentence("expense", n) for n in range(3))
    chunks = Chunker(words, max_tokens=40, overlap_tokens=0).split(f"{first}\n\n{second}")
    assert chunks == [first, second]


def test_chunks_fit_the_budget_and_cover_every_sentence_in_order() -> None:
    paragraphs = [" ".join(sentence(topic, n) for n in range(6)) for topic in ("security", "travel", "onboarding")]
    text = "\n\n".join(paragraphs)
    chunks = Chunker(words, max_tokens=32, overlap_tokens=10).split(text)
    assert len(chunks) > 3
    assert all(len(chunk.split()) <= 32 for chunk in chunks)
    every = [sentence(topic, n) for topic in ("security", "travel", "onboarding") for n in range(6)]
    positions = [next(i for i, chunk in enumerate(chunks) if s in chunk) for s in every]
    assert positions == sorted(positions)


def test_consecutive_chunks_overlap_by_whole_sentences() -> None:
    text = " ".join(sentence("remote", n) for n in range(12))
    chunks = Chunker(words, max_tokens=35, overlap_tokens=12).split(text)
    assert len(chunks) >= 4
    for previous, current in itertools.pairwise(chunks):
        last_sentence = re.split(r"(?<=\.) ", previous)[-1]
        assert current.startswith(last_sentence)
        assert current != previous


def test_no_overlap_when_overlap_is_zero() -> None:
    text = " ".join(sentence("benefits", n) for n in range(8))
    chunks = Chunker(words, max_tokens=25, overlap_tokens=0).split(text)
    assert " ".join(chunks) == text


def test_a_sentence_longer_than_a_chunk_is_split_between_words() -> None:
    long_sentence = " ".join(f"word{i}" for i in range(100)) + "."
    chunks = Chunker(words, max_tokens=30, overlap_tokens=0).split(long_sentence)
    assert len(chunks) == 4
    assert all(len(chunk.split()) <= 30 for chunk in chunks)
    assert " ".join(chunks) == long_sentence


def test_a_word_longer_than_a_chunk_is_sliced() -> None:
    def chars(text: str) -> int:  # one token per character; whitespace is free, as in word-piece models
        return len("".join(text.split())) + 2

    blob = "x" * 100
    chunks = Chunker(chars, max_tokens=40, overlap_tokens=0).split(f"see {blob} end")
    assert all(chars(chunk) - 2 <= 40 for chunk in chunks)
    assert "".join(chunks).replace(" ", "") == f"see{blob}end"


def test_list_lines_stay_on_their_own_lines() -> None:
    text = "Equipment we provide:\n- a laptop\n- a headset\n- a monitor"
    assert Chunker(words, max_tokens=50, overlap_tokens=0).split(text) == [text]


def test_lines_of_an_oversized_paragraph_are_split_at_line_ends() -> None:
    lines = [f"- item {n} is described here in enough words to matter" for n in range(8)]
    chunks = Chunker(words, max_tokens=30, overlap_tokens=0).split("\n".join(lines))
    assert len(chunks) > 1
    assert all(chunk.split("\n")[0].startswith("- item") for chunk in chunks)
    assert "\n".join(chunks) == "\n".join(lines)


def test_whitespace_is_normalised_and_empty_text_gives_no_chunks() -> None:
    chunker = Chunker(words, max_tokens=50, overlap_tokens=0)
    assert chunker.split("  \n\n \t \n") == []
    assert chunker.split("Spaces   and\ttabs\r\n\r\n\r\nnew paragraph") == ["Spaces and tabs\n\nnew paragraph"]


def test_budget_below_eight_tokens_is_refused() -> None:
    with pytest.raises(ValueError):
        Chunker(words, max_tokens=4, overlap_tokens=0)


def test_headings_stay_with_the_paragraph_they_introduce() -> None:
    section_a = " ".join(sentence("carry-over", n) for n in range(2))
    section_b = " ".join(sentence("sick leave", n) for n in range(2))
    text = f"# Vacation Policy\n\n## Carry-over\n\n{section_a}\n\n## Sick days\n\n{section_b}\n\nOwner"
    chunks = Chunker(words, max_tokens=30, overlap_tokens=0).split(text)
    assert chunks[0] == f"# Vacation Policy\n\n## Carry-over\n\n{section_a}"
    assert chunks[1] == f"## Sick days\n\n{section_b}\n\nOwner"


def test_a_heading_too_big_to_glue_stands_alone() -> None:
    body = " ".join(sentence("travel", n) for n in range(2))
    chunks = Chunker(words, max_tokens=22, overlap_tokens=0).split(f"Travel rules for everyone who flies\n\n{body}")
    assert chunks == ["Travel rules for everyone who flies", body]
