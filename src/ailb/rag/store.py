"""``RagStore``: the knowledge-base collections, awaitable, and never holding up the event loop.

Embedded ChromaDB holds the GIL through its writes (a 16-chunk upsert on a thread delayed the event loop by
about 30 ms, a 64-chunk one by 150 ms), so an embedded store lives in a worker process of its own; a ChromaDB
server client mostly waits on sockets and runs on threads (``ailb.storeworker`` does both). Either way every
call has a deadline, and the calls themselves are ``ChromaCollections`` methods run where the client lives.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Concatenate, ParamSpec, TypeVar

from ailb.errors import NotFoundError
from ailb.rag.chroma import ChromaCollections, RagStoreUnavailableError
from ailb.rag.models import CollectionInfo, Passage, StoredChunk
from ailb.storeworker import StoreWorker, WorkerStopped, WorkerTimeout

CALL_TIMEOUT = 60.0  # the first call also starts the worker process, which imports chromadb
P = ParamSpec("P")
T = TypeVar("T")


class RagStore:
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
    ) -> None:
        self.path, self.host, self.port = path, host, port
        self.timeout = timeout
        self.isolated = not host if worker_process is None else worker_process
        self._worker = StoreWorker(
            functools.partial(ChromaCollections, path=path, host=host, port=port),
            process=self.isolated,
            threads=threads,
            thread_name="ailb-rag",
        )
        self._models: dict[str, str] = {}  # collection -> embedding model, for collections seen to exist

    @property
    def location(self) -> str:
        return f"ChromaDB server {self.host}:{self.port}" if self.host else f"ChromaDB in {self.path}"

    def opened_embedder(self, name: str) -> str | None:
        """The model of a collection already seen to exist, without any I/O (None if not seen yet)."""
        return self._models.get(name)

    async def connect(self) -> None:
        await self._call(ChromaCollections.connect)

    async def list_collections(self) -> list[CollectionInfo]:
        infos = await self._call(ChromaCollections.list_collections)
        self._models = {info.name: info.embedder for info in infos}
        return infos

    async def create_collection(self, name: str, description: str, embedder: str) -> CollectionInfo:
        info = await self._call(ChromaCollections.create_collection, name, description, embedder)
        self._models[name] = info.embedder
        return info

    async def collection_info(self, name: str) -> CollectionInfo:
        return await self._call(ChromaCollections.collection_info, name)

    async def require(self, name: str) -> str:
        """The embedding model that filled the collection; raises ``NotFoundError`` unless it exists."""
        model = await self._call(ChromaCollections.require, name)
        self._models[name] = model
        return model

    async def delete_collection(self, name: str) -> None:
        self._models.pop(name, None)
        await self._call(ChromaCollections.delete_collection, name)

    async def write_chunks(self, name: str, chunks: Sequence[StoredChunk]) -> None:
        await self._call(ChromaCollections.write_chunks, name, list(chunks))

    async def prune_document(self, name: str, document_id: str, keep: int) -> None:
        await self._call(ChromaCollections.prune_document, name, document_id, keep)

    async def delete_document(self, name: str, document_id: str) -> int:
        return await self._call(ChromaCollections.delete_document, name, document_id)

    async def query(self, name: str, embedding: Sequence[float], top_k: int) -> list[Passage]:
        return await self._call(ChromaCollections.query, name, list(embedding), top_k)

    async def aclose(self) -> None:
        await self._worker.aclose()

    async def _call(
        self, method: Callable[Concatenate[ChromaCollections, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        try:
            return await self._worker.call(self.timeout, method, *args, **kwargs)
        except NotFoundError:
            if args:
                self._models.pop(str(args[0]), None)
            raise
        except WorkerTimeout as exc:
            raise RagStoreUnavailableError(f"The {self.location} did not answer within {self.timeout:g} s.") from exc
        except WorkerStopped as exc:
            raise RagStoreUnavailableError(f"The worker process of the {self.location} stopped.") from exc
