"""The conversation store on ChromaDB: embedded (``PersistentClient`` in ``MEMORY_PATH``) or a shared server
(``HttpClient`` at ``CHROMA_HOST:CHROMA_PORT``; then ``MEMORY_PATH`` is not used, not even for a lock).

Connecting, the folder lock, reconnects, deadlines and the worker process are the ChromaDB seam's
(``ailb.stores.chroma``); this module holds the memory collection's name and turns seam failures into
``MemoryStoreError`` (a ``ConfigError`` naming ``MEMORY_PATH`` when an embedded folder cannot be opened).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ailb.memory import chroma_ops as ops
from ailb.memory.models import EmbeddedTurns, SessionView, StoredTurn
from ailb.memory.store import MemoryStoreError
from ailb.settings import ConfigError
from ailb.stores.chroma import ChromaStore, ChromaTarget
from ailb.stores.errors import CollectionMissing

T = TypeVar("T")
OPEN_TIMEOUT = 60.0  # the first call also starts the worker process, which imports chromadb
LOCK_NAME = ".ailb-memory.lock"


def collection_name(embedder_name: str) -> str:
    """One collection per embedding model: vectors of different models cannot be compared."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", embedder_name).strip("-._")[:40]
    digest = hashlib.sha256(embedder_name.encode()).hexdigest()[:8]
    return f"ailb-memory-{slug}-{digest}"


class ChromaTurnStore:
    """``worker_process`` defaults to True for an embedded store and False for a server."""

    def __init__(
        self,
        collection: str,
        *,
        path: str = "",
        host: str = "",
        port: int = 8000,
        worker_process: bool | None = None,
        threads: int = 4,
        reconnect_interval: float = 5.0,
        timeout: float = 10.0,
    ) -> None:
        self.collection = collection
        self.target = ChromaTarget(path, host, port, LOCK_NAME, reconnect_interval)
        self.shared = not self.target.embedded
        self.description = self.target.description
        self.timeout = timeout
        self._store = ChromaStore(
            self.target, unavailable=MemoryStoreError, worker_process=worker_process, threads=threads,
            thread_name="ailb-memory", timeout=timeout,
        )  # fmt: skip
        self.isolated = self._store.isolated

    async def open(self) -> None:
        if not self.shared:
            await asyncio.to_thread(_prepare_folder, self.target.path)
        try:
            await self._call(ops.count, deadline=max(self.timeout, OPEN_TIMEOUT) if self.isolated else None)
        except MemoryStoreError as exc:
            if self.shared:
                raise
            raise ConfigError(
                "MEMORY_PATH", f"the conversation memory store in {self.target.path!r} cannot be opened: {exc}"
            ) from exc

    async def add(
        self, turns: Sequence[StoredTurn], embeddings: Sequence[Sequence[float] | None], dimensions: int
    ) -> None:
        await self._call(ops.upsert, list(turns), list(embeddings), dimensions)

    async def session_tokens(self, tenant: str, session_id: str) -> int:
        return await self._call(ops.session_tokens, tenant, session_id)

    async def unembedded(self, tenant: str, session_id: str) -> list[StoredTurn]:
        return await self._call(ops.unembedded, tenant, session_id)

    async def load_view(self, tenant: str, session_id: str, keep_recent: int, complete_limit: int) -> SessionView:
        return await self._call(ops.load_view, tenant, session_id, keep_recent, complete_limit)

    async def similar(
        self, tenant: str, session_id: str, embedding: Sequence[float], limit: int
    ) -> list[tuple[StoredTurn, float]]:
        return await self._call(ops.similar, tenant, session_id, list(embedding), limit)

    async def embedded_turns(self, tenant: str, session_id: str) -> EmbeddedTurns:
        return await self._call(ops.embedded_turns, tenant, session_id)

    async def list_turns(self, tenant: str, session_id: str) -> list[StoredTurn]:
        return await self._call(ops.session_turns, tenant, session_id)

    async def delete_session(self, tenant: str, session_id: str) -> list[str]:
        return await self._call(ops.delete_session, tenant, session_id)

    async def delete_older_than(self, cutoff: float) -> int:
        return await self._call(ops.delete_older_than, cutoff)

    async def ping(self) -> None:
        await self._call(ops.count)

    async def aclose(self) -> None:
        await self._store.aclose()

    async def _call(self, operation: Callable[..., T], *args: Any, deadline: float | None = None) -> T:
        try:
            return await self._store.call(ops.in_collection, self.collection, operation, *args, deadline=deadline)
        except CollectionMissing as exc:  # deleted by another client: the next call creates it again
            raise MemoryStoreError(f"The memory collection in the {self.description} was deleted.") from exc


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
