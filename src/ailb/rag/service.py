"""RagService: knowledge-base collections, ingestion and retrieval for chat requests.

Every store and embedding call runs off the event loop. On the chat path a failing store or embedder
degrades to "no context" (logged, counted, and shown by ``status()``), never to a failed request; only
the client's own mistakes (a bad or unknown collection name, a collection the key may not use) are errors.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ailb.errors import InvalidRequestError, NotFoundError
from ailb.rag.ingest import Ingestor, Progress
from ailb.rag.models import (
    CollectionInfo,
    DocumentInput,
    IngestResult,
    Passage,
    Retrieval,
    validate_collection_name,
    validate_document_id,
)
from ailb.rag.prompt import query_text, reference_message
from ailb.rag.store import RagStoreUnavailableError, VectorStore
from ailb.settings import RagConfig
from ailb.tenancy import check_collection_access

if TYPE_CHECKING:
    from ailb.embeddings.base import Embedder
    from ailb.settings import Settings

log = logging.getLogger("ailb.rag")

RETRIEVAL_TIMEOUT = 10.0
# After the store failed on the chat path, requests skip it for this long instead of each waiting on it.
STORE_RETRY_AFTER = 5.0
NO_CONTEXT = Retrieval(message=None, sources=[])
_T = TypeVar("_T")


class RagMetrics(Protocol):
    def rag_retrieved(self, seconds: float) -> None: ...
    def rag_failed(self, operation: str) -> None: ...
    def rag_ingested(self, chunks: int) -> None: ...


class RagService:
    def __init__(
        self,
        config: RagConfig,
        store: VectorStore,
        embedder: Embedder,
        *,
        metrics: RagMetrics | None = None,
        timeout: float = RETRIEVAL_TIMEOUT,
        batch_size: int = 8,
    ) -> None:
        self.config = config
        self.store = store
        self.embedder = embedder
        self.metrics = metrics
        self.timeout = timeout
        self.ingestor = Ingestor(
            store, embedder, chunk_tokens=config.chunk_tokens, overlap_tokens=config.chunk_overlap,
            batch_size=batch_size, metrics=metrics,
        )  # fmt: skip
        self._store_ok = True
        self._skip_store_until = 0.0
        self._ingest_locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        embedder: Embedder,
        *,
        metrics: RagMetrics | None = None,
    ) -> RagService:
        """Collections in ChromaDB: embedded in ``RAG_PATH``, or on the server at ``CHROMA_HOST``."""
        from ailb.rag.chroma_store import ChromaVectorStore

        store = ChromaVectorStore(path=settings.rag.path, host=settings.chroma_host, port=settings.chroma_port)
        return cls(settings.rag, store, embedder, metrics=metrics)

    # --- lifecycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            await self.store.connect()
        except RagStoreUnavailableError:
            self._store_failed("list")
            log.warning("knowledge base store at %s is unavailable; RAG requests get no context until it is back",
                        self.store.location)  # fmt: skip

    async def aclose(self) -> None:
        await self.store.aclose()

    def status(self) -> str:
        """``ok``, ``loading`` (the embedding model is not ready yet) or ``degraded`` (store or model failing)."""
        if not self._store_ok or self.embedder.status() == "failed":
            return "degraded"
        return "ok" if self.embedder.ready else "loading"

    # --- chat path ----------------------------------------------------------------------------------------
    async def retrieve(
        self,
        collections: tuple[str, ...],
        messages: list[dict[str, Any]],
        top_k: int,
        permitted: frozenset[str] | None = None,
    ) -> Retrieval:
        """Passages for the latest user message from ``collections``, as one reference message. ``permitted``:
        the collections the client's key may use (``None``: every one)."""
        names = tuple(dict.fromkeys(validate_collection_name(n, "rag_collection") for n in collections))
        check_collection_access(permitted, names)
        text = query_text(messages)
        if not names or not text or time.monotonic() < self._skip_store_until:
            return NO_CONTEXT
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                usable = await self._usable(names)
                if not self.embedder.ready or not usable:
                    return NO_CONTEXT
                passages = await self._search(usable, text, top_k)
        except RagStoreUnavailableError:
            self._store_failed("retrieve")
            self._skip_store_until = time.monotonic() + STORE_RETRY_AFTER
            return NO_CONTEXT
        except TimeoutError:
            log.warning("knowledge base retrieval took more than %.1f s; answering without context", self.timeout)
            self._store_failed("retrieve")
            return NO_CONTEXT
        self._store_ok = True
        if self.metrics is not None:
            self.metrics.rag_retrieved(time.monotonic() - started)
        relevant = [p for p in passages if p.score >= self.config.min_score]
        if not relevant:
            return NO_CONTEXT
        sources = list(dict.fromkeys(p.document_id for p in relevant))
        return Retrieval(message=reference_message(relevant), sources=sources, passages=relevant)

    async def _usable(self, names: Sequence[str]) -> list[str]:
        """The collections searchable with this embedder; ``NotFoundError`` for any that does not exist."""
        models = {name: self.store.opened_embedder(name) for name in names}
        unopened = [name for name, model in models.items() if model is None]
        if unopened:
            found = await asyncio.gather(*(self.store.require(name) for name in unopened))
            models.update(zip(unopened, found, strict=True))
        usable = [name for name in names if models[name] in ("", self.embedder.name)]
        if len(usable) < len(names):
            log.warning("collections %s were filled with another embedding model than %s; re-ingest them",
                        [n for n in names if n not in usable], self.embedder.name)  # fmt: skip
            self._store_failed("retrieve")
        return usable

    async def _search(self, names: Sequence[str], text: str, top_k: int) -> list[Passage]:
        try:
            vector = await self.embedder.embed_query(text)
        except Exception as exc:  # any embedder failure: degrade like a store failure
            raise RagStoreUnavailableError("The embedding model failed.") from exc
        found = await asyncio.gather(*(self.store.query(n, vector, top_k) for n in names))
        merged = sorted((p for passages in found for p in passages), key=lambda p: p.score, reverse=True)
        return merged[:top_k]

    # --- administration -----------------------------------------------------------------------------------
    async def search(self, collection: str, text: str, top_k: int) -> list[Passage]:
        """The ``top_k`` best passages for ``text`` with their scores (no relevance threshold)."""
        name = validate_collection_name(collection)
        await self._require_compatible(name, "retrieve")
        await self.embedder.wait_ready()
        return await self._admin("retrieve", self._search((name,), text, top_k))

    async def list_collections(self) -> list[CollectionInfo]:
        return await self._admin("list", self.store.list_collections())

    async def get_collection(self, name: str) -> CollectionInfo:
        validate_collection_name(name)
        return await self._admin("list", self.store.collection_info(name))

    async def create_collection(self, name: str, description: str = "") -> CollectionInfo:
        validate_collection_name(name)
        return await self._admin("ingest", self.store.create_collection(name, description, self.embedder.name))

    async def ensure_collection(self, name: str, description: str = "") -> tuple[CollectionInfo, bool]:
        """The collection ``name``, created if needed; the flag says whether it was created now."""
        try:
            return await self.get_collection(name), False
        except NotFoundError:
            return await self.create_collection(name, description), True

    async def delete_collection(self, name: str) -> None:
        validate_collection_name(name)
        await self._admin("delete", self.store.delete_collection(name))

    async def ingest(
        self, collection: str, documents: Sequence[DocumentInput], progress: Progress | None = None
    ) -> IngestResult:
        """Chunk, embed and store ``documents``; a document already there is replaced, not duplicated."""
        name = validate_collection_name(collection)
        for index, document in enumerate(documents):
            validate_document_id(document.id, f"documents[{index}].id")
        await self._require_compatible(name, "ingest")
        async with self._ingest_locks.setdefault(name, asyncio.Lock()):
            return await self._admin("ingest", self.ingestor.ingest(name, documents, progress))

    async def delete_document(self, collection: str, document_id: str) -> int:
        """Remove a document's chunks; returns how many there were (0: no such document)."""
        name = validate_collection_name(collection)
        validate_document_id(document_id)
        await self._admin("delete", self.store.require(name))
        async with self._ingest_locks.setdefault(name, asyncio.Lock()):
            return await self._admin("delete", self.store.delete_document(name, document_id))

    async def _require_compatible(self, name: str, operation: str) -> None:
        """Raise unless the collection exists and was filled with this gateway's embedding model."""
        model = await self._admin(operation, self.store.require(name))
        if model and model != self.embedder.name:
            raise InvalidRequestError(
                f"The collection {name!r} was filled with the embedding model {model}, not {self.embedder.name}; "
                "delete it and ingest its documents again.",
                param="name",
                code="embedder_mismatch",
                status=409,
            )

    async def _admin(self, operation: str, work: Awaitable[_T]) -> _T:
        try:
            result = await work
        except RagStoreUnavailableError:
            self._store_failed(operation)
            raise
        self._store_ok = True
        return result

    def _store_failed(self, operation: str) -> None:
        self._store_ok = False
        if self.metrics is not None:
            self.metrics.rag_failed(operation)
