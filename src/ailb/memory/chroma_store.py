"""The conversation store on ChromaDB: embedded (``PersistentClient`` in ``MEMORY_PATH``) or a shared server
(``HttpClient`` at ``CHROMA_HOST:CHROMA_PORT``).

Embedded ChromaDB holds the GIL through its writes (on a thread, a 64-turn upsert stalled the event loop for
about 100 ms), so the embedded client lives in a worker process of its own. A server client mostly waits on
sockets, which releases the GIL, so it runs on threads. Either way every call has a deadline
(``ailb.storeworker`` runs the calls; this module turns its errors into ``MemoryStoreError``).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ailb.memory import chroma_ops as ops
from ailb.memory.chroma_ops import Connection, StoreFailure, Target
from ailb.memory.models import SessionView, StoredTurn
from ailb.memory.store import MemoryStoreError
from ailb.settings import ConfigError
from ailb.storeworker import StoreWorker, WorkerStopped, WorkerTimeout

T = TypeVar("T")
OPEN_TIMEOUT = 60.0  # the first call also starts the worker process, which imports chromadb


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
        self.target = Target(collection, path, host, port, reconnect_interval)
        self.shared = bool(host)
        self.description = f"ChromaDB server {host}:{port}" if host else f"ChromaDB in {path}"
        self.timeout = timeout
        self.isolated = not self.shared if worker_process is None else worker_process
        self._worker = StoreWorker(
            functools.partial(Connection, self.target),
            process=self.isolated,
            threads=threads,
            thread_name="ailb-memory",
        )

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

    async def list_turns(self, tenant: str, session_id: str) -> list[StoredTurn]:
        return await self._call(ops.session_turns, tenant, session_id)

    async def delete_session(self, tenant: str, session_id: str) -> list[str]:
        return await self._call(ops.delete_session, tenant, session_id)

    async def delete_older_than(self, cutoff: float) -> int:
        return await self._call(ops.delete_older_than, cutoff)

    async def ping(self) -> None:
        await self._call(ops.count)

    async def aclose(self) -> None:
        await self._worker.aclose()

    async def _call(self, operation: Callable[..., T], *args: Any, deadline: float | None = None) -> T:
        deadline = self.timeout if deadline is None else deadline
        try:
            return await self._worker.call(deadline, Connection.run, operation, *args)
        except StoreFailure as exc:
            raise MemoryStoreError(f"The conversation memory store ({self.description}) failed: {exc}") from exc
        except WorkerTimeout as exc:
            # ChromaDB's HTTP client waits forever on a server that does not answer: we do not.
            raise MemoryStoreError(f"The {self.description} did not answer within {deadline:g} s.") from exc
        except WorkerStopped as exc:
            raise MemoryStoreError(f"The worker process of the {self.description} stopped; restarting it.") from exc


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
