"""What only the ChromaDB conversation store does: collection names, a worker process for an embedded folder,
the folder lock, bounded waits on a silent server, and a server mode that never touches ``MEMORY_PATH``.
(Everything it shares with the in-memory store is in the contract suite.)"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path

import pytest

from ailb.memory.chroma_store import ChromaTurnStore, collection_name
from ailb.memory.models import StoredTurn, Turn
from ailb.memory.service import MemoryService
from ailb.memory.store import MemoryStoreError
from ailb.settings import ConfigError, load_settings
from ailb.stores.chroma import ChromaConnection
from tests.ports import free_port
from tests.unit.memory.conftest import KeywordEmbedder

VECTOR = [1.0, 0.0, 0.0]


def stored(user: str, assistant: str) -> StoredTurn:
    return StoredTurn.of(Turn("t", "s", user, assistant, model="m", deployment="d", timestamp=1000.0))


def test_collection_names_are_valid_and_differ_per_model() -> None:
    names = {collection_name(n) for n in ("local:all-MiniLM-L6-v2", "provider:text-embedding-3-small", "provider:x")}
    assert len(names) == 3
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]", name)


async def test_an_embedded_store_runs_in_its_own_worker_process(tmp_path: Path) -> None:
    store = ChromaTurnStore("ailb-memory-unit", path=str(tmp_path / "m"))
    assert store.isolated
    await store.open()
    try:
        original = stored("hello", "there")
        await store.add([original], [VECTOR], 3)
        assert await store.list_turns("t", "s") == [original]
        assert await store.similar("t", "s", VECTOR, 3) == [(original, pytest.approx(1.0, abs=1e-4))]
    finally:
        await store.aclose()
    reopened = ChromaTurnStore("ailb-memory-unit", path=str(tmp_path / "m"))
    await reopened.open()
    try:
        assert await reopened.list_turns("t", "s") == [original]
    finally:
        await reopened.aclose()


async def test_two_stores_never_share_an_embedded_folder(tmp_path: Path) -> None:
    store = ChromaTurnStore("ailb-memory-unit", path=str(tmp_path / "m"), worker_process=False)
    await store.open()
    second = ChromaTurnStore("ailb-memory-unit", path=str(tmp_path / "m"), worker_process=False)
    with pytest.raises(ConfigError, match="another process is using this folder") as raised:
        await second.open()
    assert raised.value.key == "MEMORY_PATH"
    await second.aclose()
    await store.aclose()  # releases the folder
    third = ChromaTurnStore("ailb-memory-unit", path=str(tmp_path / "m"), worker_process=False)
    await third.open()
    await third.aclose()


async def test_a_server_that_never_answers_is_a_bounded_failure(silent_server: socket.socket) -> None:
    store = ChromaTurnStore("ailb-memory-unit", host="127.0.0.1", port=silent_server.getsockname()[1], timeout=0.3)
    started = time.monotonic()
    with pytest.raises(MemoryStoreError):
        await store.open()
    with pytest.raises(MemoryStoreError):
        await store.list_turns("t", "s")
    assert time.monotonic() - started < 5
    silent_server.close()  # lets the abandoned calls fail, so that closing the store does not wait for them
    await store.aclose()
    await asyncio.sleep(0)


async def test_with_chroma_host_memory_path_is_never_touched(tmp_path: Path) -> None:
    """The scale-out defect: with CHROMA_HOST set, memory took the lock file in MEMORY_PATH (a folder that
    need not exist) and failed with FileNotFoundError instead of talking to the server."""
    port = free_port()  # nothing listens there: the server refuses at once
    folder = tmp_path / "ailb_memory"
    settings = load_settings({"MEMORY_PATH": str(folder), "CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(port)})
    memory = MemoryService.from_settings(settings, KeywordEmbedder())
    assert isinstance(memory.store, ChromaTurnStore) and memory.store.shared
    with pytest.raises(MemoryStoreError) as raised:
        await memory.store.open()
    message = raised.value.message
    assert f"ChromaDB server 127.0.0.1:{port}" in message  # it went to the server...
    assert "lock" not in message and "FileNotFoundError" not in message, message  # ...not to a lock file
    await memory.store.aclose()
    assert not folder.exists()


def _drop_collection(connection: ChromaConnection, name: str) -> None:
    connection.client().delete_collection(name)


async def test_a_memory_collection_deleted_by_another_client_is_made_again(tmp_path: Path) -> None:
    store = ChromaTurnStore("ailb-memory-unit", path=str(tmp_path / "m"), worker_process=False)
    await store.open()
    await store.add([stored("hello", "there")], [VECTOR], 3)
    await store._store.call(_drop_collection, "ailb-memory-unit")
    with pytest.raises(MemoryStoreError, match="was deleted"):
        await store.list_turns("t", "s")
    assert await store.list_turns("t", "s") == []
    await store.aclose()
