"""``ChromaVectorStore``: knowledge-base collections in ChromaDB, embedded (``RAG_PATH``) or on a server
(``CHROMA_HOST``/``CHROMA_PORT``; then ``RAG_PATH`` is not used).

Connecting, the folder lock, reconnects, deadlines and the worker process are the ChromaDB seam's
(``ailb.stores.chroma``: an embedded store runs in a worker process of its own, because ChromaDB holds the GIL
while it writes — a 16-chunk upsert on a thread delayed the event loop by about 30 ms, a 64-chunk one by
150 ms). This module runs ``chroma_ops`` there and gives their failures RAG's meaning: a missing collection
is ``collection_not_found``, anything else ``RagStoreUnavailableError``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ailb.rag import chroma_ops as ops
from ailb.rag.models import CollectionInfo, Passage, StoredChunk
from ailb.rag.store import RagStoreUnavailableError, collection_not_found
from ailb.stores.chroma import ChromaStore, ChromaTarget
from ailb.stores.errors import CollectionMissing

log = logging.getLogger("ailb.rag")

CALL_TIMEOUT = 60.0  # the first call also starts the worker process, which imports chromadb
LOCK_NAME = ".ailb-rag.lock"
T = TypeVar("T")


class ChromaVectorStore:
    """``worker_process`` defaults to True for an embedded store (``path``) and False for a server (``host``)."""

    def __init__(
        self,
        *,
        path: str,
        host: str = "",
        port: int = 8000,
        worker_process: bool | None = None,
        threads: int = 4,
        timeout: float = CALL_TIMEOUT,
        reconnect_interval: float = 1.0,
    ) -> None:
        self.target = ChromaTarget(path, host, port, LOCK_NAME, reconnect_interval)
        self._store = ChromaStore(
            self.target, unavailable=RagStoreUnavailableError, worker_process=worker_process, threads=threads,
            thread_name="ailb-rag", timeout=timeout,
        )  # fmt: skip
        self.timeout = timeout
        self.isolated = self._store.isolated
        self._models: dict[str, str] = {}  # collection -> embedding model, for collections seen to exist

    @property
    def location(self) -> str:
        return self.target.description

    def opened_embedder(self, name: str) -> str | None:
        return self._models.get(name)

    async def connect(self) -> None:
        try:
            await self._store.ping()
        except RagStoreUnavailableError as exc:
            log.warning("knowledge base store: %s", exc)
            raise

    async def list_collections(self) -> list[CollectionInfo]:
        try:
            infos = await self._call(ops.list_collections)
        except CollectionMissing as exc:  # one was deleted by another client while the list was read
            raise RagStoreUnavailableError("A collection disappeared while they were listed; try again.") from exc
        self._models = {info.name: info.embedder for info in infos}
        return infos

    async def create_collection(self, name: str, description: str, embedder: str) -> CollectionInfo:
        info = await self._on(name, ops.create_collection, description, embedder)
        self._models[name] = info.embedder
        return info

    async def collection_info(self, name: str) -> CollectionInfo:
        return await self._on(name, ops.collection_info)

    async def require(self, name: str) -> str:
        model = await self._on(name, ops.require)
        self._models[name] = model
        return model

    async def delete_collection(self, name: str) -> None:
        self._models.pop(name, None)
        await self._on(name, ops.delete_collection)

    async def write_chunks(self, name: str, chunks: Sequence[StoredChunk]) -> None:
        await self._on(name, ops.write_chunks, list(chunks))

    async def prune_document(self, name: str, document_id: str, keep: int) -> None:
        await self._on(name, ops.prune_document, document_id, keep)

    async def delete_document(self, name: str, document_id: str) -> int:
        return await self._on(name, ops.delete_document, document_id)

    async def query(self, name: str, embedding: Sequence[float], top_k: int) -> list[Passage]:
        return await self._on(name, ops.query, list(embedding), top_k)

    async def aclose(self) -> None:
        await self._store.aclose()

    async def _on(self, name: str, operation: Callable[..., T], *args: Any) -> T:
        """``operation`` on the collection ``name``: ``collection_not_found`` when it does not exist."""
        try:
            return await self._call(operation, name, *args)
        except CollectionMissing as exc:
            self._models.pop(name, None)
            raise collection_not_found(name) from exc

    async def _call(self, operation: Callable[..., T], *args: Any) -> T:
        try:
            return await self._store.call(operation, *args)
        except RagStoreUnavailableError as exc:
            log.warning("knowledge base store: %s", exc)
            raise
