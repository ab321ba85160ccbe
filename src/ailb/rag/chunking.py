"""Splitting a document into overlapping chunks that fit the embedding model's window.

Paragraphs are kept whole when they fit; a paragraph that does not is split at line and sentence ends, and a
sentence that still does not fit is split between words. The pieces are then packed greedily into chunks of
at most ``max_tokens``; each new chunk starts with the last sentences of the previous one (up to
``overlap_tokens``) so that a fact spanning a boundary is found from either side.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

TokenCounter = Callable[[str], int]

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n+")
# A sentence ends at '.', '!' or '?' (and any closing quotes/brackets) followed by space and an opening.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[A-Z0-9])")
_SPACES = re.compile(r"[ \t\f\v]+")
_HEADING_CHARS = 100


@dataclass(frozen=True, slots=True)
class _Piece:
    text: str
    tokens: int
    joiner: str  # what goes between this piece and the one before it in the same chunk


class Chunker:
    """``count_tokens`` may count a fixed overhead per call (a model's [CLS]/[SEP]); it is measured once and
    left out, so ``max_tokens`` is the budget for the text itself."""

    def __init__(self, count_tokens: TokenCounter, max_tokens: int, overlap_tokens: int) -> None:
        if max_tokens < 8:
            raise ValueError("max_tokens must be at least 8")
        self._count = count_tokens
        self._overhead = count_tokens("")
        self.max_tokens = max_tokens
        self.overlap_tokens = max(0, min(overlap_tokens, max_tokens // 2))

    def count_tokens(self, text: str) -> int:
        return self._count(text) - self._overhead

    def split(self, text: str) -> list[str]:
        pieces = self._pieces(text)
        chunks: list[list[_Piece]] = []
        current: list[_Piece] = []
        used = 0
        for piece in pieces:
            if current and used + piece.tokens > self.max_tokens:
                chunks.append(current)
                current = self._overlap(current, piece.tokens)
                used = sum(p.tokens for p in current)
            current.append(piece)
            used += piece.tokens
        if current:
            chunks.append(current)
        return [_join(chunk) for chunk in chunks]

    def _overlap(self, previous: list[_Piece], incoming: int) -> list[_Piece]:
        """The trailing pieces of ``previous`` that fit the overlap and leave room for ``incoming``."""
        room = min(self.overlap_tokens, self.max_tokens - incoming)
        tail: list[_Piece] = []
        used = 0
        for piece in reversed(previous[1:]):
            if used + piece.tokens > room:
                break
            tail.insert(0, piece)
            used += piece.tokens
        return tail

    def _pieces(self, text: str) -> list[_Piece]:
        pieces: list[_Piece] = []
        heading: _Piece | None = None  # a heading waits to be glued to the paragraph it introduces
        for paragraph in _PARAGRAPH_BREAK.split(text.replace("\r\n", "\n").replace("\r", "\n")):
            lines = [_SPACES.sub(" ", line).strip() for line in paragraph.split("\n")]
            lines = [line for line in lines if line]
            if not lines:
                continue
            found = self._paragraph_pieces(lines)
            if heading is not None:
                first = found[0]
                if heading.tokens + first.tokens <= self.max_tokens:
                    found[0] = _Piece(f"{heading.text}\n\n{first.text}", heading.tokens + first.tokens, "\n\n")
                else:
                    pieces.append(heading)
                heading = None
            if len(found) == 1 and _is_heading(lines):
                heading = found[0]  # (with any heading that was waiting already glued on)
                continue
            pieces.extend(found)
        if heading is not None:
            pieces.append(heading)
        return pieces

    def _paragraph_pieces(self, lines: list[str]) -> list[_Piece]:
        """The paragraph whole if it fits, else its sentences (the first one marked as starting a paragraph)."""
        whole = "\n".join(lines)
        tokens = self.count_tokens(whole)
        if tokens <= self.max_tokens:
            return [_Piece(whole, tokens, "\n\n")]
        pieces: list[_Piece] = []
        joiner = "\n\n"
        for line in lines:
            for sentence in self._sentences(line):
                pieces.append(_Piece(sentence.text, sentence.tokens, joiner))
                joiner = " "
            joiner = "\n"
        return pieces

    def _sentences(self, line: str) -> list[_Piece]:
        found: list[_Piece] = []
        for sentence in _SENTENCE_END.split(line):
            sentence = sentence.strip()
            if not sentence:
                continue
            tokens = self.count_tokens(sentence)
            if tokens <= self.max_tokens:
                found.append(_Piece(sentence, tokens, " "))
            else:
                found.extend(self._word_windows(sentence))
        return found

    def _word_windows(self, sentence: str) -> list[_Piece]:
        windows: list[_Piece] = []
        words: list[str] = []
        used = 0
        for word, tokens in self._words(sentence):
            if words and used + tokens > self.max_tokens:
                windows.append(_Piece(" ".join(words), used, " "))
                words, used = [], 0
            words.append(word)
            used += tokens
        if words:
            windows.append(_Piece(" ".join(words), used, " "))
        return windows

    def _words(self, sentence: str) -> Iterator[tuple[str, int]]:
        """The words of ``sentence`` and their token counts; a word longer than a whole chunk is sliced."""
        for word in sentence.split():
            tokens = self.count_tokens(word)
            if tokens <= self.max_tokens:
                yield word, tokens
                continue
            step = max(1, self.max_tokens // 2)
            for start in range(0, len(word), step):
                part = word[start : start + step]
                yield part, self.count_tokens(part)


def _is_heading(lines: list[str]) -> bool:
    """A one-line paragraph that introduces what follows: a markdown heading, or a short unpunctuated line."""
    line = lines[0]
    return len(lines) == 1 and len(line) <= _HEADING_CHARS and (line.startswith("#") or line[-1] not in ".!?,;")


def _join(pieces: list[_Piece]) -> str:
    parts = [pieces[0].text]
    for piece in pieces[1:]:
        parts.append(piece.joiner)
        parts.append(piece.text)
    return "".join(parts)
