"""``RagStore``: the awaitable store, with the embedded ChromaDB in a worker process (the default)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from ailb.errors import InvalidRequestError, NotFoundError
from ailb.rag.chroma import RagStoreUnavailableError
from ailb.rag.models import Passage, StoredChunk
from ailb.rag.store import RagStore


@pytest_asyncio.fixture
async def worker_store(tmp_path: Path) -> AsyncIterator[RagStore]:
    store = RagStore(path=str(tmp_path / "rag"))
    assert store.isolated
    await store.connect()
    yield store
    await store.aclose()


def chunk(doc: str, vector: list[float]) -> StoredChunk:
    return StoredChunk(doc, 0, f"text of {doc}", vector, f"{doc}.md", doc.title(), {"team": "hr"})


async def test_operations_and_errors_cross_the_process_boundary(worker_store: RagStore) -> None:
    assert worker_store.opened_embedder("policies") is None
    info = await worker_store.create_collection("policies", "HR", "test:model")
    assert (info.name, info.embedder) == ("policies", "test:model")
    assert worker_store.opened_embedder("policies") == "test:model"
    await worker_store.write_chunks("policies", [chunk("east", [1.0, 0.0]), chunk("north", [0.0, 1.0])])
    [best] = await worker_store.query("policies", [1.0, 0.1], 1)
    assert isinstance(best, Passage)
    assert (best.document_id, best.title, best.metadata) == ("east", "East", {"team": "hr"})
    with pytest.raises(InvalidRequestError) as conflict:
        await worker_store.create_collection("policies", "", "test:model")
    assert (conflict.value.status, conflict.value.code) == (409, "collection_exists")
    await worker_store.delete_collection("policies")
    assert worker_store.opened_embedder("policies") is None
    with pytest.raises(NotFoundError) as missing:
        await worker_store.query("policies", [1.0, 0.0], 1)
    assert (missing.value.status, missing.value.param, missing.value.code) == (
        404, "rag_collection", "collection_not_found",
    )  # fmt: skip


async def test_a_worker_that_dies_is_replaced(tmp_path: Path) -> None:
    others = {child.pid for child in multiprocessing.active_children()}
    store = RagStore(path=str(tmp_path / "rag"))
    await store.create_collection("policies", "", "m")
    workers = [child.pid for child in multiprocessing.active_children() if child.pid not in others]
    assert len(workers) == 1 and workers[0] != os.getpid(), "the embedded store should run in one child process"
    os.kill(workers[0], signal.SIGKILL)  # type: ignore[arg-type]
    with pytest.raises(RagStoreUnavailableError):
        await store.list_collections()
    assert [c.name for c in await store.list_collections()] == ["policies"]
    await store.aclose()


@pytest.fixture
def silent_server() -> Iterator[socket.socket]:
    """A listening TCP socket that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server


async def test_a_server_that_never_answers_hits_the_deadline(silent_server: socket.socket) -> None:
    store = RagStore(path="", host="127.0.0.1", port=silent_server.getsockname()[1], timeout=0.5)
    assert not store.isolated
    with pytest.raises(RagStoreUnavailableError) as caught:
        await store.connect()
    assert "did not answer within 0.5 s" in caught.value.message
    silent_server.close()  # lets the abandoned call fail, so that closing the store does not wait for it
    await store.aclose()
