"""The conversation store on ChromaDB: embedded (``PersistentClient`` in ``MEMORY_PATH``) or a shared server
(``HttpClient`` at ``CHROMA_HOST:CHROMA_PORT``). The only module of memory that imports chromadb.

Every call runs on this store's own thread pool. Every read and delete filters on tenant AND session, and
rows whose metadata does not match are dropped again on the way out.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ailb.memory.models import SessionView, StoredTurn, Turn, document_text
from ailb.memory.store import MemoryStoreError
from ailb.settings import ConfigError

T = TypeVar("T")
DELETE_BATCH = 1000


def collection_name(embedder_name: str) -> str:
    """One collection per embedding model: vectors of different models cannot be compared."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", embedder_name).strip("-._")[:40]
    digest = hashlib.sha256(embedder_name.encode()).hexdigest()[:8]
    return f"ailb-memory-{slug}-{digest}"


class ChromaTurnStore:
    def __init__(
        self,
        collection: str,
        *,
        path: str = "",
        host: str = "",
        port: int = 8000,
        threads: int = 4,
        reconnect_interval: float = 5.0,
        timeout: float = 10.0,
    ) -> None:
        self.collection_name = collection
        self.path = path
        self.host = host
        self.port = port
        self.shared = bool(host)
        self.description = f"ChromaDB server {host}:{port}" if host else f"ChromaDB in {path}"
        self.reconnect_interval = reconnect_interval
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ailb-memory")
        self._client: Any = None
        self._collection: Any = None
        self._next_connect = 0.0
        self._connect_lock = threading.Lock()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        if not self.shared:
            await loop.run_in_executor(self._executor, _prepare_folder, self.path)
        try:
            await asyncio.wait_for(loop.run_in_executor(self._executor, self._connect), self.timeout)
        except Exception as exc:
            reason = str(exc) or f"no answer within {self.timeout:g} s"
            if self.shared:
                raise MemoryStoreError(f"Cannot reach the {self.description}: {reason}") from exc
            raise ConfigError(
                "MEMORY_PATH", f"the conversation memory store in {self.path!r} cannot be opened: {reason}"
            ) from exc

    async def add(
        self, turns: Sequence[StoredTurn], embeddings: Sequence[Sequence[float] | None], dimensions: int
    ) -> None:
        placeholder = [1.0] + [0.0] * (dimensions - 1)
        ids = [t.id for t in turns]
        documents = [document_text(t) for t in turns]
        metadatas = [_metadata(t, embedded=v is not None) for t, v in zip(turns, embeddings, strict=True)]
        vectors = [placeholder if v is None else list(v) for v in embeddings]
        await self._run(lambda c: c.upsert(ids=ids, embeddings=vectors, documents=documents, metadatas=metadatas))

    async def session_tokens(self, tenant: str, session_id: str) -> int:
        where = _where(tenant, session_id)
        rows = await self._run(lambda c: c.get(where=where, include=["metadatas"]))
        return sum(int(m.get("tokens", 0)) for m in rows["metadatas"] if _belongs(m, tenant, session_id))

    async def unembedded(self, tenant: str, session_id: str) -> list[StoredTurn]:
        where = _where(tenant, session_id, {"embedded": {"$eq": False}})
        rows = await self._run(lambda c: c.get(where=where, include=["documents", "metadatas"]))
        return _stored_rows(rows, tenant, session_id)

    async def load_view(self, tenant: str, session_id: str, keep_recent: int, complete_limit: int) -> SessionView:
        return await self._run(lambda c: _load_view(c, tenant, session_id, keep_recent, complete_limit))

    async def similar(
        self, tenant: str, session_id: str, embedding: Sequence[float], limit: int
    ) -> list[tuple[StoredTurn, float]]:
        where = _where(tenant, session_id, {"embedded": {"$eq": True}})
        query = list(embedding)
        rows = await self._run(
            lambda c: c.query(
                query_embeddings=[query],
                n_results=limit,
                where=where,
                include=["documents", "metadatas", "distances"],
            )
        )
        found: list[tuple[StoredTurn, float]] = []
        for turn_id, document, meta, distance in zip(
            rows["ids"][0], rows["documents"][0], rows["metadatas"][0], rows["distances"][0], strict=True
        ):
            stored = _stored(turn_id, document, meta, tenant, session_id)
            if stored is not None:
                found.append((stored, 1.0 - float(distance)))
        return found

    async def list_turns(self, tenant: str, session_id: str) -> list[StoredTurn]:
        where = _where(tenant, session_id)
        rows = await self._run(lambda c: c.get(where=where, include=["documents", "metadatas"]))
        return _stored_rows(rows, tenant, session_id)

    async def delete_session(self, tenant: str, session_id: str) -> list[str]:
        where = _where(tenant, session_id)

        def delete(collection: Any) -> list[str]:
            ids: list[str] = collection.get(where=where, include=[])["ids"]
            for start in range(0, len(ids), DELETE_BATCH):
                collection.delete(ids=ids[start : start + DELETE_BATCH], where=where)
            return ids

        return await self._run(delete)

    async def delete_older_than(self, cutoff: float) -> int:
        def delete(collection: Any) -> int:
            where = {"ts": {"$lt": cutoff}}
            ids: list[str] = collection.get(where=where, include=[])["ids"]
            for start in range(0, len(ids), DELETE_BATCH):
                collection.delete(ids=ids[start : start + DELETE_BATCH], where=where)
            return len(ids)

        return await self._run(delete)

    async def ping(self) -> None:
        await self._run(lambda c: c.count())

    async def aclose(self) -> None:
        client, self._client, self._collection = self._client, None, None
        if client is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, client.close)
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self, operation: Callable[[Any], T]) -> T:
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(self._executor, self._with_collection, operation)
        try:
            return await asyncio.wait_for(call, self.timeout)
        except MemoryStoreError:
            raise
        except TimeoutError as exc:
            # ChromaDB's HTTP client waits forever on a server that does not answer: we do not.
            raise MemoryStoreError(f"The {self.description} did not answer within {self.timeout:g} s.") from exc
        except Exception as exc:
            self._collection = None
            raise MemoryStoreError(f"The conversation memory store ({self.description}) failed: {exc}") from exc

    def _with_collection(self, operation: Callable[[Any], T]) -> T:
        collection = self._collection
        if collection is None:
            with self._connect_lock:
                collection = self._collection
                if collection is None:
                    now = time.monotonic()
                    if now < self._next_connect:
                        raise MemoryStoreError(f"The {self.description} is unavailable; reconnecting shortly.")
                    self._next_connect = now + self.reconnect_interval
                    collection = self._connect()
        return operation(collection)

    def _connect(self) -> Any:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False)
        if self.shared:
            client = chromadb.HttpClient(host=self.host, port=self.port, settings=settings)
        else:
            client = chromadb.PersistentClient(path=self.path, settings=settings)
        collection = client.get_or_create_collection(
            self.collection_name,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"ailb": "memory"},
        )
        self._client, self._collection = client, collection
        return collection


def _prepare_folder(path: str) -> None:
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ConfigError("MEMORY_PATH", f"{path!r} exists and is not a folder; conversation memory needs a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".ailb-write-check"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            "MEMORY_PATH", f"{path!r} is not a writable folder for conversation memory: {reason}"
        ) from exc


def _where(tenant: str, session_id: str, *more: dict[str, Any]) -> dict[str, Any]:
    return {"$and": [{"tenant": {"$eq": tenant}}, {"session": {"$eq": session_id}}, *more]}


def _metadata(stored: StoredTurn, *, embedded: bool) -> dict[str, Any]:
    turn = stored.turn
    return {
        "embedded": embedded,
        "tenant": turn.tenant,
        "session": turn.session_id,
        "ts": turn.timestamp,
        "tokens": stored.tokens,
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


def _load_view(collection: Any, tenant: str, session_id: str, keep_recent: int, complete_limit: int) -> SessionView:
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
        documents = collection.get(
            ids=[turn_id for turn_id, _ in wanted], where=where, include=["documents", "metadatas"]
        )
        turns = _stored_rows(documents, tenant, session_id)
    return SessionView(count=len(entries), total_tokens=total, turns=turns, complete=complete)
