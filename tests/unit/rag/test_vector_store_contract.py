"""The knowledge-base store contract, one suite run against both implementations: the in-memory store the unit
tests use and ChromaDB (embedded, on threads), so the two cannot drift apart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ailb.errors import InvalidRequestError, NotFoundError
from ailb.rag.chroma_store import ChromaVectorStore
from ailb.rag.inmemory import InMemoryVectorStore
from ailb.rag.models import StoredChunk
from ailb.rag.store import RagStoreUnavailableError, VectorStore


@pytest_asyncio.fixture(params=["in-memory", "chromadb"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    opened: VectorStore = (
        InMemoryVectorStore()
        if request.param == "in-memory"
        else ChromaVectorStore(path=str(tmp_path / "rag"), worker_process=False)
    )
    await opened.connect()
    yield opened
    await opened.aclose()


def chunk(doc: str, position: int, vector: list[float], text: str = "", **metadata: str | int | bool) -> StoredChunk:
    return StoredChunk(doc, position, text or f"{doc} part {position}", vector, f"{doc}.md", doc.title(), metadata)


async def test_collections_are_created_listed_described_and_deleted(store: VectorStore) -> None:
    created = await store.create_collection("policies", "Company policies", "test:words")
    assert (created.name, created.description, created.chunks, created.embedder) == (
        "policies", "Company policies", 0, "test:words",
    )  # fmt: skip
    assert created.created_at > 0
    await store.create_collection("handbook", "", "other:model")
    assert [c.name for c in await store.list_collections()] == ["handbook", "policies"]
    assert await store.collection_info("policies") == created
    assert await store.require("handbook") == "other:model"
    await store.delete_collection("policies")
    assert [c.name for c in await store.list_collections()] == ["handbook"]
    with pytest.raises(NotFoundError) as caught:
        await store.collection_info("policies")
    assert (caught.value.status, caught.value.param, caught.value.code) == (
        404, "rag_collection", "collection_not_found",
    )  # fmt: skip


async def test_creating_an_existing_collection_is_a_conflict(store: VectorStore) -> None:
    await store.create_collection("policies", "first", "m")
    with pytest.raises(InvalidRequestError) as caught:
        await store.create_collection("policies", "second", "m")
    assert (caught.value.status, caught.value.code) == (409, "collection_exists")
    assert (await store.collection_info("policies")).description == "first"


async def test_missing_collections_are_never_created_implicitly(store: VectorStore) -> None:
    for call in (
        store.require("ghost"),
        store.collection_info("ghost"),
        store.query("ghost", [1.0, 0.0], 3),
        store.write_chunks("ghost", [chunk("a", 0, [1.0, 0.0])]),
        store.prune_document("ghost", "a", 0),
        store.delete_document("ghost", "a"),
        store.delete_collection("ghost"),
    ):
        with pytest.raises(NotFoundError):
            await call
    assert await store.list_collections() == []
    assert store.opened_embedder("ghost") is None


async def test_a_collection_seen_to_exist_knows_its_embedder_without_io(store: VectorStore) -> None:
    await store.create_collection("policies", "", "test:model")
    assert store.opened_embedder("policies") == "test:model"
    await store.delete_collection("policies")
    assert store.opened_embedder("policies") is None


async def test_query_returns_passages_with_cosine_scores_best_first(store: VectorStore) -> None:
    await store.create_collection("kb1", "", "m")
    await store.write_chunks("kb1", [chunk("east", 0, [2.0, 0.0], team="ops", level=3, public=True),
                                     chunk("north", 0, [0.0, 1.0])])  # fmt: skip
    best, second = await store.query("kb1", [0.8, 0.6], 5)
    assert (best.document_id, best.chunk_id, best.collection, best.position, best.source, best.title) == (
        "east", "east#0", "kb1", 0, "east.md", "East",
    )  # fmt: skip
    assert best.score == pytest.approx(0.8, abs=1e-4)
    assert second.score == pytest.approx(0.6, abs=1e-4)
    assert best.metadata == {"team": "ops", "level": 3, "public": True}
    assert second.metadata == {}
    [only] = await store.query("kb1", [0.8, 0.6], 1)
    assert only.document_id == "east"


async def test_an_empty_collection_finds_nothing(store: VectorStore) -> None:
    await store.create_collection("kb1", "", "m")
    assert await store.query("kb1", [1.0, 0.0], 3) == []
    await store.write_chunks("kb1", [])
    assert (await store.collection_info("kb1")).chunks == 0


async def test_rewriting_a_document_replaces_its_chunks_and_pruning_drops_the_tail(store: VectorStore) -> None:
    await store.create_collection("kb1", "", "m")
    first_version = [chunk("doc", i, [1.0, float(i)]) for i in range(4)]
    await store.write_chunks("kb1", [*first_version, chunk("other", 0, [0.0, 1.0])])
    await store.write_chunks("kb1", [chunk("doc", i, [1.0, float(i)], text=f"new {i}") for i in range(2)])
    await store.prune_document("kb1", "doc", keep=2)
    assert (await store.collection_info("kb1")).chunks == 3
    texts = sorted(p.text for p in await store.query("kb1", [1.0, 0.0], 10) if p.document_id == "doc")
    assert texts == ["new 0", "new 1"]


async def test_deleting_a_document_counts_its_chunks(store: VectorStore) -> None:
    await store.create_collection("kb1", "", "m")
    await store.write_chunks("kb1", [chunk("doc", i, [1.0, 0.0]) for i in range(3)] + [chunk("keep", 0, [0.0, 1.0])])
    assert await store.delete_document("kb1", "doc") == 3
    assert await store.delete_document("kb1", "doc") == 0
    assert [p.document_id for p in await store.query("kb1", [1.0, 0.0], 5)] == ["keep"]


async def test_collections_are_separate(store: VectorStore) -> None:
    await store.create_collection("kb1", "", "m")
    await store.create_collection("kb2", "", "m")
    await store.write_chunks("kb1", [chunk("doc", 0, [1.0, 0.0])])
    assert await store.query("kb2", [1.0, 0.0], 5) == []
    assert await store.delete_document("kb2", "doc") == 0
    assert [c.chunks for c in await store.list_collections()] == [1, 0]


async def test_a_vector_of_another_size_is_a_store_failure(store: VectorStore) -> None:
    await store.create_collection("kb1", "", "m")
    await store.write_chunks("kb1", [chunk("doc", 0, [1.0, 0.0])])
    with pytest.raises(RagStoreUnavailableError):
        await store.write_chunks("kb1", [chunk("doc", 1, [1.0, 0.0, 0.0])])
    with pytest.raises(RagStoreUnavailableError):
        await store.query("kb1", [1.0, 0.0, 0.0], 3)
    assert (await store.collection_info("kb1")).chunks == 1
