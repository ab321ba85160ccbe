"""The gateway's delimited prompt blocks and the one guard that keeps the text inside them from escaping.

Memory (``<conversation_memory>``) and RAG (``<reference_sources>``, ``<source …>``) wrap text they did not
write — earlier user turns and replies, retrieved passages — in tags that tell the model where that text begins
and ends. Text that spells one of those tags could close the block and pose as the gateway's own words, so
before it goes inside a block every tag of every block is defused: the ``<`` becomes ``&lt;``, which no reader
takes for markup. "A tag" is read the way a model might: any casing, spaces or invisible characters between
``<``, ``/`` and the name, ``-``, ``.`` or a space where the name has ``_``, and the full-width ``＜``.
"""

from __future__ import annotations

import re

MEMORY_TAG = "conversation_memory"
SOURCES_TAG = "reference_sources"
SOURCE_TAG = "source"
BLOCK_TAGS = (MEMORY_TAG, SOURCES_TAG, SOURCE_TAG)

_GAP = r"[\s\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff]*"  # whitespace and invisible format characters
_SEPARATOR = rf"{_GAP}[_\-.\s]?{_GAP}"


def _tag_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    spelled = "|".join(_SEPARATOR.join(re.escape(word) for word in name.split("_")) for name in names)
    return re.compile(rf"[<\uff1c\ufe64]({_GAP}/?{_GAP}(?:{spelled})(?![\w-]))", re.IGNORECASE)


_ANY_BLOCK_TAG = _tag_pattern(BLOCK_TAGS)


def defuse_tags(text: str) -> str:
    """``text`` with every opening or closing tag of the gateway's blocks made inert."""
    if "<" not in text and "\uff1c" not in text and "\ufe64" not in text:
        return text
    return _ANY_BLOCK_TAG.sub(r"&lt;\1", text)
