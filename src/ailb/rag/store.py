"""``RagStore``: the knowledge-base collections, awaitable, and never holding up the event loop.

Embedded ChromaDB holds the GIL through its writes (a 16-chunk upsert on a thread delayed the event loop by
about 30 ms, a 64-chunk one by 150 ms), so an embedded store lives in a worker process of its own; a ChromaDB
server client mostly waits on sockets and runs on threads. Either way every call has a deadline, and the
calls themselves are ``ChromaCollections`` methods run where the client lives.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, cast

from ailb.errors import NotFoundError
from ailb.rag.chroma import ChromaCollections, RagStoreUnavailableError
from ailb.rag.models import CollectionInfo, Passage, StoredChunk

CALL_TIMEOUT = 60.0  # the first call also starts the worker process, which imports chromadb
_worker_store: ChromaCollections | None = None  # the store of this process, when it is a worker


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
        self._threads = threads
        self._local: ChromaCollections | None = None
        self._executor = self._new_executor()
        self._models: dict[str, str] = {}  # collection -> embedding model, for collections seen to exist

    @property
    def location(self) -> str:
        return f"ChromaDB server {self.host}:{self.port}" if self.host else f"ChromaDB in {self.path}"

    def opened_embedder(self, name: str) -> str | None:
        """The model of a collection already seen to exist, without any I/O (None if not seen yet)."""
        return self._models.get(name)

    async def connect(self) -> None:
        await self._call("connect")

    async def list_collections(self) -> list[CollectionInfo]:
        infos = cast(list[CollectionInfo], await self._call("list_collections"))
        self._models = {info.name: info.embedder for info in infos}
        return infos

    async def create_collection(self, name: str, description: str, embedder: str) -> CollectionInfo:
        info = cast(CollectionInfo, await self._call("create_collection", name, description, embedder))
        self._models[name] = info.embedder
        return info

    async def collection_info(self, name: str) -> CollectionInfo:
        return cast(CollectionInfo, await self._call("collection_info", name))

    async def require(self, name: str) -> str:
        """The embedding model that filled the collection; raises ``NotFoundError`` unless it exists."""
        model = cast(str, await self._call("require", name))
        self._models[name] = model
        return model

    async def delete_collection(self, name: str) -> None:
        self._models.pop(name, None)
        await self._call("delete_collection", name)

    async def write_chunks(self, name: str, chunks: Sequence[StoredChunk]) -> None:
        await self._call("write_chunks", name, list(chunks))

    async def prune_document(self, name: str, document_id: str, keep: int) -> None:
        await self._call("prune_document", name, document_id, keep)

    async def delete_document(self, name: str, document_id: str) -> int:
        return cast(int, await self._call("delete_document", name, document_id))

    async def query(self, name: str, embedding: Sequence[float], top_k: int) -> list[Passage]:
        return cast(list[Passage], await self._call("query", name, list(embedding), top_k))

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(self._submit("close"), 10)
        except Exception:  # a worker that is gone or stuck is left to finish on its own
            self._executor.shutdown(wait=False, cancel_futures=True)
            return
        await loop.run_in_executor(None, self._executor.shutdown, True)

    async def _call(self, method: str, *args: Any) -> Any:
        try:
            return await asyncio.wait_for(self._submit(method, *args), self.timeout)
        except NotFoundError:
            if args:
                self._models.pop(str(args[0]), None)
            raise
        except TimeoutError as exc:
            raise RagStoreUnavailableError(f"The {self.location} did not answer within {self.timeout:g} s.") from exc
        except BrokenProcessPool as exc:
            self._executor = self._new_executor()
            raise RagStoreUnavailableError(f"The worker process of the {self.location} stopped.") from exc

    def _submit(self, method: str, *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        if self.isolated:
            return loop.run_in_executor(self._executor, _run_in_worker, method, *args)
        assert self._local is not None
        return loop.run_in_executor(self._executor, getattr(self._local, method), *args)

    def _new_executor(self) -> Executor:
        if not self.isolated:
            self._local = ChromaCollections(path=self.path, host=self.host, port=self.port)
            return ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="ailb-rag")
        # One spawned process owns the embedded client: two processes must never open the same folder.
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self.path, self.host, self.port),
        )


def _start_worker(path: str, host: str, port: int) -> None:
    global _worker_store
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the gateway, which then closes the worker
    _worker_store = ChromaCollections(path=path, host=host, port=port)


def _run_in_worker(method: str, *args: Any) -> Any:
    assert _worker_store is not None, "the worker was not started"
    return getattr(_worker_store, method)(*args)
