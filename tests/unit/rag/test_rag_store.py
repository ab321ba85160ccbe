"""The blocking ChromaDB layer, against a real embedded ChromaDB in a temporary folder."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ailb.errors import InvalidRequestError, NotFoundError
from ailb.rag.chroma import ChromaCollections, RagStoreUnavailableError
from ailb.rag.models import StoredChunk


def chunk(doc: str, position: int, vector: list[float], text: str = "", **metadata: str) -> StoredChunk:
    return StoredChunk(doc, position, text or f"{doc} part {position}", vector, f"{doc}.md", doc.title(), metadata)


def test_collections_are_created_listed_described_and_deleted(collections: ChromaCollections) -> None:
    created = collections.create_collection("policies", "Company policies", "test:words")
    assert (created.name, created.description, created.chunks, created.embedder) == (
        "policies", "Company policies", 0, "test:words",
    )  # fmt: skip
    assert created.created_at > 0
    collections.create_collection("handbook", "", "test:words")
    assert [c.name for c in collections.list_collections()] == ["handbook", "policies"]
    collections.delete_collection("policies")
    assert [c.name for c in collections.list_collections()] == ["handbook"]
    with pytest.raises(NotFoundError) as caught:
        collections.collection_info("policies")
    assert (caught.value.status, caught.value.param, caught.value.code) == (
        404, "rag_collection", "collection_not_found",
    )  # fmt: skip


def test_creating_an_existing_collection_is_a_conflict(collections: ChromaCollections) -> None:
    collections.create_collection("policies", "", "m")
    with pytest.raises(InvalidRequestError) as caught:
        collections.create_collection("policies", "", "m")
    assert caught.value.status == 409


def test_missing_collections_are_never_created_implicitly(collections: ChromaCollections) -> None:
    for call in (
        lambda: collections.require("ghost"),
        lambda: collections.query("ghost", [1.0, 0.0], 3),
        lambda: collections.write_chunks("ghost", [chunk("a", 0, [1.0, 0.0])]),
        lambda: collections.delete_document("ghost", "a"),
        lambda: collections.delete_collection("ghost"),
    ):
        with pytest.raises(NotFoundError):
            call()
    assert collections.list_collections() == []


def test_query_returns_passages_with_cosine_scores_best_first(collections: ChromaCollections) -> None:
    collections.create_collection("kb", "", "m")
    collections.write_chunks("kb", [chunk("east", 0, [1.0, 0.0], team="ops"), chunk("north", 0, [0.0, 1.0])])
    best, second = collections.query("kb", [0.8, 0.6], 5)
    assert (best.document_id, best.chunk_id, best.collection, best.source, best.title) == (
        "east", "east#0", "kb", "east.md", "East",
    )  # fmt: skip
    assert best.score == pytest.approx(0.8, abs=1e-4)
    assert second.score == pytest.approx(0.6, abs=1e-4)
    assert best.metadata == {"team": "ops"}


def test_rewriting_a_document_replaces_its_chunks_and_pruning_drops_the_tail(collections: ChromaCollections) -> None:
    collections.create_collection("kb", "", "m")
    first_version = [chunk("doc", i, [1.0, float(i)]) for i in range(4)]
    collections.write_chunks("kb", [*first_version, chunk("other", 0, [0.0, 1.0])])
    collections.write_chunks("kb", [chunk("doc", i, [1.0, float(i)], text=f"new {i}") for i in range(2)])
    collections.prune_document("kb", "doc", keep=2)
    assert collections.collection_info("kb").chunks == 3
    texts = sorted(p.text for p in collections.query("kb", [1.0, 0.0], 10) if p.document_id == "doc")
    assert texts == ["new 0", "new 1"]


def test_deleting_a_document_counts_its_chunks(collections: ChromaCollections) -> None:
    collections.create_collection("kb", "", "m")
    collections.write_chunks("kb", [chunk("doc", i, [1.0, 0.0]) for i in range(3)] + [chunk("keep", 0, [0.0, 1.0])])
    assert collections.delete_document("kb", "doc") == 3
    assert collections.delete_document("kb", "doc") == 0
    assert [p.document_id for p in collections.query("kb", [1.0, 0.0], 5)] == ["keep"]


def test_a_collection_deleted_by_another_client_is_not_found_again(tmp_path: Path) -> None:
    first = ChromaCollections(path=str(tmp_path / "shared"))
    first.create_collection("kb", "", "m")
    first.require("kb")
    second = ChromaCollections(path=str(tmp_path / "shared"))
    second.delete_collection("kb")
    with pytest.raises(NotFoundError):
        first.query("kb", [1.0, 0.0], 1)


def test_an_unreachable_chroma_server_is_unavailable_not_a_crash() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = ChromaCollections(path="", host="127.0.0.1", port=port)
    with pytest.raises(RagStoreUnavailableError) as caught:
        unreachable.connect()
    assert caught.value.status == 503
    with pytest.raises(RagStoreUnavailableError):
        unreachable.list_collections()
