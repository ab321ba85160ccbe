"""The one ChromaDB seam: where ChromaDB is, the folder lock (embedded only), reconnecting, and the one place
where ChromaDB's exceptions become ours."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ailb
from ailb.errors import InvalidRequestError
from ailb.stores.chroma import ChromaConnection, ChromaStore, ChromaTarget
from ailb.stores.errors import CollectionMissing, StoreUnavailableError
from tests.ports import free_port

SRC = Path(ailb.__file__).parent


class OwnersError(StoreUnavailableError):
    code = "owners_code"


def make(connection: ChromaConnection, name: str) -> int:
    connection.get_or_create_collection(name, {"owner": "test"}).add(ids=["a"], embeddings=[[1.0, 0.0]])
    return int(connection.collection(name).count())


def query(connection: ChromaConnection, name: str, vector: list[float]) -> list[str]:
    ids: list[str] = connection.collection(name).query(query_embeddings=[vector], n_results=1)["ids"][0]
    return ids


def refuse(connection: ChromaConnection) -> None:
    raise InvalidRequestError("ours, raised inside an operation", code="our_code")


def test_only_the_seam_imports_chromadb() -> None:
    importers = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name == "chromadb" or name.startswith("chromadb.") for name in names):
                importers.append(path.relative_to(SRC).as_posix())
    assert importers and all(path.startswith("stores/") for path in importers), importers


def test_a_target_is_a_folder_or_a_server_and_a_server_wins() -> None:
    with pytest.raises(ValueError, match="needs a folder"):
        ChromaTarget()
    assert ChromaTarget(path="data").embedded
    server = ChromaTarget(path="data", host="chroma.internal", port=8001)
    assert not server.embedded
    assert server.description == "ChromaDB server chroma.internal:8001"


async def test_an_embedded_folder_is_locked_while_open(tmp_path: Path) -> None:
    target = ChromaTarget(path=str(tmp_path / "db"), lock_name=".test.lock")
    first = ChromaStore(target, worker_process=False)
    assert await first.call(make, "things") == 1
    assert (tmp_path / "db" / ".test.lock").exists()
    second = ChromaStore(target, unavailable=OwnersError, worker_process=False)
    with pytest.raises(OwnersError, match="another process is using this folder"):
        await second.ping()
    await second.aclose()
    await first.aclose()
    third = ChromaStore(target, worker_process=False)
    assert await third.call(query, "things", [1.0, 0.0]) == ["a"]  # the folder is free again, data kept
    await third.aclose()


async def test_a_server_target_creates_no_folder_and_takes_no_lock(tmp_path: Path) -> None:
    target = ChromaTarget(path=str(tmp_path / "db"), host="127.0.0.1", port=free_port())
    store = ChromaStore(target, unavailable=OwnersError, timeout=5)
    assert not store.isolated  # a server client runs on threads
    with pytest.raises(OwnersError) as raised:
        await store.ping()
    assert raised.value.status == 503 and raised.value.code == "owners_code"
    assert f"ChromaDB server 127.0.0.1:{target.port} failed" in raised.value.message
    await store.aclose()
    assert not (tmp_path / "db").exists()


async def test_after_a_failure_it_reconnects_at_most_once_per_interval() -> None:
    patient = ChromaStore(ChromaTarget(host="127.0.0.1", port=free_port(), reconnect_interval=60), timeout=5)
    with pytest.raises(StoreUnavailableError) as first:
        await patient.ping()
    assert "reconnecting shortly" not in first.value.message  # it tried to connect
    with pytest.raises(StoreUnavailableError, match="reconnecting shortly"):  # it did not try again yet
        await patient.ping()
    await patient.aclose()
    eager = ChromaStore(ChromaTarget(host="127.0.0.1", port=free_port(), reconnect_interval=0), timeout=5)
    for _ in range(2):
        with pytest.raises(StoreUnavailableError) as again:
            await eager.ping()
        assert "reconnecting shortly" not in again.value.message
    await eager.aclose()


async def test_chromadb_errors_are_translated_once_and_ours_pass_through(tmp_path: Path) -> None:
    target = ChromaTarget(path=str(tmp_path / "db"), reconnect_interval=60)
    store = ChromaStore(target, unavailable=OwnersError, worker_process=False)
    with pytest.raises(CollectionMissing):
        await store.call(query, "ghost", [1.0, 0.0])
    await store.call(make, "things")
    with pytest.raises(OwnersError) as refused:  # ChromaDB refuses a vector of another size
        await store.call(query, "things", [1.0, 0.0, 0.0])
    assert refused.value.__cause__ is not None and "ChromaDB in" in refused.value.message
    assert await store.call(query, "things", [1.0, 0.0]) == ["a"]  # a refusal keeps the connection
    with pytest.raises(InvalidRequestError) as ours:
        await store.call(refuse)
    assert ours.value.code == "our_code"
    await store.aclose()


async def test_in_a_worker_process_errors_cross_the_boundary(tmp_path: Path) -> None:
    store = ChromaStore(ChromaTarget(path=str(tmp_path / "db")), unavailable=OwnersError)
    assert store.isolated
    assert await store.call(make, "things", deadline=60) == 1
    with pytest.raises(CollectionMissing):
        await store.call(query, "ghost", [1.0, 0.0])
    with pytest.raises(OwnersError):
        await store.call(query, "things", [1.0, 0.0, 0.0])
    with pytest.raises(InvalidRequestError):
        await store.call(refuse)
    await store.aclose()
