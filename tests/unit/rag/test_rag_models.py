from __future__ import annotations

import pytest

from ailb.errors import InvalidRequestError
from ailb.rag.models import (
    content_id,
    document_id_for,
    validate_collection_name,
    validate_document_id,
    validate_metadata,
)


@pytest.mark.parametrize("name", ["company_docs", "abc", "Team-1.handbook", "a" * 63])
def test_valid_collection_names(name: str) -> None:
    assert validate_collection_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "ab", "a" * 64, "-docs", "docs-", "my docs", "docs/x", "a..b", "ü-docs", "docs\n"]
)
def test_invalid_collection_names(name: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        validate_collection_name(name, "rag_collection")
    assert caught.value.param == "rag_collection"
    assert caught.value.code == "invalid_collection_name"


@pytest.mark.parametrize("doc_id", ["handbook", "policies/vacation.md", "doc-1:v2", "_private", "a@b+c"])
def test_valid_document_ids(doc_id: str) -> None:
    assert validate_document_id(doc_id) == doc_id


@pytest.mark.parametrize("doc_id", ["", "has space", "a,b", "-lead", "x" * 257, "new\nline", "doc1\n"])
def test_invalid_document_ids(doc_id: str) -> None:
    with pytest.raises(InvalidRequestError):
        validate_document_id(doc_id)


def test_document_ids_from_file_paths_are_valid_and_stable() -> None:
    assert document_id_for("policies/Vacation Policy (2024).md") == "policies/Vacation-Policy-2024-.md"
    assert document_id_for("dir\\file.txt") == "dir/file.txt"
    weird = document_id_for("日本語.txt")
    assert validate_document_id(weird) == weird
    assert document_id_for("日本語.txt") == weird


def test_content_id_depends_only_on_the_text() -> None:
    assert content_id("same text") == content_id("same text")
    assert content_id("same text") != content_id("other text")


def test_metadata_accepts_scalars_and_refuses_nesting_and_reserved_keys() -> None:
    assert validate_metadata({"team": "hr", "year": 2024, "draft": False, "score": 0.5}) == {
        "team": "hr", "year": 2024, "draft": False, "score": 0.5,
    }  # fmt: skip
    assert validate_metadata(None) == {}
    for bad in ({"nested": {"a": 1}}, {"_doc": "x"}, {"list": [1]}, {"": 1}, {"long": "x" * 1001}, ["a"]):
        with pytest.raises(InvalidRequestError):
            validate_metadata(bad)
