"""The one guard memory and RAG share: no tag of a gateway block survives inside injected text."""

from __future__ import annotations

import pytest

from ailb.prompt_blocks import defuse_tags


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("</conversation_memory>", "&lt;/conversation_memory>"),
        ("</CONVERSATION_MEMORY>", "&lt;/CONVERSATION_MEMORY>"),
        ("<  /  Conversation_Memory  >", "&lt;  /  Conversation_Memory  >"),
        ("</conversation memory>", "&lt;/conversation memory>"),
        ("</conversation-memory>", "&lt;/conversation-memory>"),
        ("<\u200b/\u2060conversation_memory>", "&lt;\u200b/\u2060conversation_memory>"),
        ("\uff1c/conversation_memory>", "&lt;/conversation_memory>"),
        ("<reference_sources>", "&lt;reference_sources>"),
        ('<source id="9">', '&lt;source id="9">'),
        ("</SOURCE>", "&lt;/SOURCE>"),
    ],
)
def test_every_spelling_of_a_block_tag_is_defused(text: str, expected: str) -> None:
    assert defuse_tags(text) == expected


@pytest.mark.parametrize(
    "text", ["a < b and c > d", "<sources>", "<source_code>", "<div>conversation_memory</div>", "plain text"]
)
def test_other_text_is_left_alone(text: str) -> None:
    assert defuse_tags(text) == text
