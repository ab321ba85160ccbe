"""ChromaDB operations on the memory collection, run through ``Connection.run`` where the client lives: in the
store's worker process (embedded ChromaDB) or on one of the store's threads (a ChromaDB server), both run by
``ailb.storeworker``. Only this module imports chromadb.

Every read and delete filters on tenant AND session, and rows whose metadata does not match are dropped again
on the way out. Failures leave here as ``StoreFailure`` (plain text: ChromaDB's exceptions do not always
survive pickling) and the next call reconnects, at most once per ``reconnect_interval``.
"""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from ailb.memory.models import SessionView, StoredTurn, Turn, document_text

T = TypeVar("T")
DELETE_BATCH = 1000


class StoreFailure(Exception):
    """A ChromaDB call failed; the message says how."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where the collection is: an embedded folder (``path``) or a server (``host``:``port``)."""

    collection: str
    path: str = ""
    host: str = ""
    port: int = 8000
    reconnect_interval: float = 5.0


class Connection:
    """A client and its collection, opened on first use and dropped after a failure."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._client: Any = None
        self._collection: Any = None
        self._folder_lock: IO[str] | None = None
        self._next_connect = 0.0
        self._lock = threading.Lock()

    def run(self, operation: Callable[..., T], *args: Any) -> T:
        try:
            return operation(self._ensure_collection(), *args)
        except StoreFailure:
            raise
        except Exception as exc:
            self._collection = None
            raise StoreFailure(f"{type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        client, self._client, self._collection = self._client, None, None
        if client is not None:
            client.close()
        if self._folder_lock is not None:
            self._folder_lock.close()
            self._folder_lock = None

    def _ensure_collection(self) -> Any:
        with self._lock:
            if self._collection is None:
                now = time.monotonic()
                if now < self._next_connect:
                    raise StoreFailure("unavailable; reconnecting shortly")
                self._next_connect = now + self.target.reconnect_interval
                if self.target.path and self._folder_lock is None:
                    self._folder_lock = _lock_folder(self.target.path)
                self._client, self._collection = _connect(self.target)
            return self._collection


def _lock_folder(path: str) -> IO[str]:
    """Embedded ChromaDB is not safe with two processes in one folder: hold a lock while it is open."""
    handle = open(Path(path) / ".ailb-memory.lock", "a")  # held open until close()
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise StoreFailure(
            "another process is using this folder; give each AILB process its own MEMORY_PATH, "
            "or share memory between processes through a ChromaDB server (CHROMA_HOST)"
        ) from None
    return handle


def _connect(target: Target) -> tuple[Any, Any]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False)
    if target.host:
        client = chromadb.HttpClient(host=target.host, port=target.port, settings=settings)
    else:
        client = chromadb.PersistentClient(path=target.path, settings=settings)
    collection = client.get_or_create_collection(
        target.collection,
        embedding_function=None,
        configuration={"hnsw": {"space": "cosine"}},
        metadata={"ailb": "memory"},
    )
    return client, collection


# --- operations: each takes the collection first ----------------------------------------------------------------
def upsert(
    collection: Any, turns: Sequence[StoredTurn], embeddings: Sequence[Sequence[float] | None], dimensions: int
) -> None:
    placeholder = [1.0] + [0.0] * (dimensions - 1)
    collection.upsert(
        ids=[t.id for t in turns],
        embeddings=[placeholder if v is None else list(v) for v in embeddings],
        documents=[document_text(t) for t in turns],
        metadatas=[_metadata(t, embedded=v is not None) for t, v in zip(turns, embeddings, strict=True)],
    )


def load_view(collection: Any, tenant: str, session_id: str, keep_recent: int, complete_limit: int) -> SessionView:
    where = _where(tenant, session_id)
    rows = collection.get(where=where, include=["metadatas"])
    entries = sorted(
        ((turn_id, meta) for turn_id, meta in zip(rows["ids"], rows["metadatas"], strict=True)
         if _belongs(meta, tenant, session_id)),
        key=lambda entry: float(entry[1].get("ts", 0.0)),
    )  # fmt: skip
    total = sum(int(meta.get("tokens", 0)) for _, meta in entries)
    complete = total <= complete_limit
    wanted = entries if complete else entries[max(0, len(entries) - keep_recent) :] if keep_recent else []
    turns: list[StoredTurn] = []
    if wanted:
        ids = [turn_id for turn_id, _ in wanted]
        turns = _stored_rows(
            collection.get(ids=ids, where=where, include=["documents", "metadatas"]), tenant, session_id
        )
    return SessionView(count=len(entries), total_tokens=total, turns=turns, complete=complete)


def similar(
    collection: Any, tenant: str, session_id: str, embedding: Sequence[float], limit: int
) -> list[tuple[StoredTurn, float]]:
    rows = collection.query(
        query_embeddings=[list(embedding)],
        n_results=limit,
        where=_where(tenant, session_id, {"embedded": {"$eq": True}}),
        include=["documents", "metadatas", "distances"],
    )
    found: list[tuple[StoredTurn, float]] = []
    for turn_id, document, meta, distance in zip(
        rows["ids"][0], rows["documents"][0], rows["metadatas"][0], rows["distances"][0], strict=True
    ):
        stored = _stored(turn_id, document, meta, tenant, session_id)
        if stored is not None:
            found.append((stored, 1.0 - float(distance)))
    return found


def session_turns(collection: Any, tenant: str, session_id: str) -> list[StoredTurn]:
    rows = collection.get(where=_where(tenant, session_id), include=["documents", "metadatas"])
    return _stored_rows(rows, tenant, session_id)


def unembedded(collection: Any, tenant: str, session_id: str) -> list[StoredTurn]:
    where = _where(tenant, session_id, {"embedded": {"$eq": False}})
    return _stored_rows(collection.get(where=where, include=["documents", "metadatas"]), tenant, session_id)


def session_tokens(collection: Any, tenant: str, session_id: str) -> int:
    rows = collection.get(where=_where(tenant, session_id), include=["metadatas"])
    return sum(int(meta.get("tokens", 0)) for meta in rows["metadatas"] if _belongs(meta, tenant, session_id))


def delete_session(collection: Any, tenant: str, session_id: str) -> list[str]:
    return _delete(collection, _where(tenant, session_id))


def delete_older_than(collection: Any, cutoff: float) -> int:
    return len(_delete(collection, {"ts": {"$lt": cutoff}}))


def count(collection: Any) -> int:
    return int(collection.count())


def _delete(collection: Any, where: dict[str, Any]) -> list[str]:
    ids: list[str] = collection.get(where=where, include=[])["ids"]
    for start in range(0, len(ids), DELETE_BATCH):
        collection.delete(ids=ids[start : start + DELETE_BATCH], where=where)
    return ids


def _where(tenant: str, session_id: str, *more: dict[str, Any]) -> dict[str, Any]:
    return {"$and": [{"tenant": {"$eq": tenant}}, {"session": {"$eq": session_id}}, *more]}


def _metadata(stored: StoredTurn, *, embedded: bool) -> dict[str, Any]:
    turn = stored.turn
    return {
        "tenant": turn.tenant,
        "session": turn.session_id,
        "ts": turn.timestamp,
        "tokens": stored.tokens,
        "embedded": embedded,
        "user_len": len(turn.user),
        "model": turn.model,
        "deployment": turn.deployment,
        "prompt_tokens": turn.prompt_tokens,
        "completion_tokens": turn.completion_tokens,
    }


def _belongs(meta: Any, tenant: str, session_id: str) -> bool:
    return isinstance(meta, dict) and meta.get("tenant") == tenant and meta.get("session") == session_id


def _stored(turn_id: str, document: Any, meta: Any, tenant: str, session_id: str) -> StoredTurn | None:
    if not _belongs(meta, tenant, session_id):
        return None
    text = document if isinstance(document, str) else ""
    split = int(meta.get("user_len", 0))
    turn = Turn(
        tenant=tenant,
        session_id=session_id,
        user=text[:split],
        assistant=text[split + 1 :],
        model=str(meta.get("model", "")),
        deployment=str(meta.get("deployment", "")),
        prompt_tokens=int(meta.get("prompt_tokens", 0)),
        completion_tokens=int(meta.get("completion_tokens", 0)),
        timestamp=float(meta.get("ts", 0.0)),
    )
    return StoredTurn(turn_id, turn, int(meta.get("tokens", 0)))


def _stored_rows(rows: Any, tenant: str, session_id: str) -> list[StoredTurn]:
    turns = [
        stored
        for turn_id, document, meta in zip(rows["ids"], rows["documents"], rows["metadatas"], strict=True)
        if (stored := _stored(turn_id, document, meta, tenant, session_id)) is not None
    ]
    turns.sort(key=lambda t: t.turn.timestamp)
    return turns
