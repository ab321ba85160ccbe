"""What only the ChromaDB store does: a worker process for an embedded folder (the default), errors crossing
that boundary, the folder lock, deadlines on a silent server, and a server mode that touches no folder.
(Everything else it shares with the in-memory store is in the contract suite.)"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ailb.errors import InvalidRequestError, NotFoundError
from ailb.rag.chroma_store import ChromaVectorStore
from ailb.rag.models import Passage, StoredChunk
from ailb.rag.store import RagStoreUnavailableError
from ailb.stores.chroma import ChromaConnection
from tests.ports import free_port


@pytest_asyncio.fixture
async def worker_store(tmp_path: Path) -> AsyncIterator[ChromaVectorStore]:
    store = ChromaVectorStore(path=str(tmp_path / "rag"))
    assert store.isolated
    await store.connect()
    yield store
    await store.aclose()


def chunk(doc: str, vector: list[float]) -> StoredChunk:
    return StoredChunk(doc, 0, f"text of {doc}", vector, f"{doc}.md", doc.title(), {"team": "hr"})


async def test_operations_and_errors_cross_the_process_boundary(worker_store: ChromaVectorStore) -> None:
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
    store = ChromaVectorStore(path=str(tmp_path / "rag"))
    await store.create_collection("policies", "", "m")
    workers = [child.pid for child in multiprocessing.active_children() if child.pid not in others]
    assert len(workers) == 1 and workers[0] != os.getpid(), "the embedded store should run in one child process"
    os.kill(workers[0], signal.SIGKILL)  # type: ignore[arg-type]
    with pytest.raises(RagStoreUnavailableError):
        await store.list_collections()
    assert [c.name for c in await store.list_collections()] == ["policies"]
    await store.aclose()


async def test_a_server_that_never_answers_hits_the_deadline(silent_server: socket.socket) -> None:
    store = ChromaVectorStore(path="", host="127.0.0.1", port=silent_server.getsockname()[1], timeout=0.5)
    assert not store.isolated
    with pytest.raises(RagStoreUnavailableError) as caught:
        await store.connect()
    assert "did not answer within 0.5 s" in caught.value.message
    silent_server.close()  # lets the abandoned call fail, so that closing the store does not wait for it
    await store.aclose()


async def test_an_unreachable_server_is_unavailable_and_touches_no_folder(tmp_path: Path) -> None:
    store = ChromaVectorStore(path=str(tmp_path / "rag"), host="127.0.0.1", port=free_port(), timeout=5)
    with pytest.raises(RagStoreUnavailableError) as caught:
        await store.connect()
    assert caught.value.status == 503
    with pytest.raises(RagStoreUnavailableError):
        await store.list_collections()
    await store.aclose()
    assert not (tmp_path / "rag").exists()  # RAG_PATH is not used with a server: no folder, no lock


def _delete_behind_the_stores_back(connection: ChromaConnection, name: str) -> None:
    connection.client().delete_collection(name)  # the raw client: the store's open handle is now stale


async def test_a_collection_deleted_by_another_client_is_not_found_again(tmp_path: Path) -> None:
    store = ChromaVectorStore(path=str(tmp_path / "rag"), worker_process=False)
    await store.create_collection("kb1", "", "m")
    await store.query("kb1", [1.0, 0.0], 1)
    await store._store.call(_delete_behind_the_stores_back, "rag_kb1")
    with pytest.raises(NotFoundError):
        await store.query("kb1", [1.0, 0.0], 1)
    assert store.opened_embedder("kb1") is None
    await store.create_collection("kb1", "", "m")  # and it can be made again
    await store.aclose()


async def test_two_stores_never_share_an_embedded_folder(tmp_path: Path) -> None:
    first = ChromaVectorStore(path=str(tmp_path / "rag"), worker_process=False)
    await first.create_collection("kb1", "", "m")
    second = ChromaVectorStore(path=str(tmp_path / "rag"), worker_process=False)
    with pytest.raises(RagStoreUnavailableError, match="another process is using this folder"):
        await second.list_collections()
    await second.aclose()
    await first.aclose()  # releases the folder
    third = ChromaVectorStore(path=str(tmp_path / "rag"), worker_process=False)
    assert [c.name for c in await third.list_collections()] == ["kb1"]
    await third.aclose()
