"""Ingestion: documents → chunks → vectors → store, in batches, without ever blocking the event loop.

Chunk ids are ``<document id>#<position>``, so re-ingesting a document overwrites its chunks in place; the
chunks a longer earlier version had beyond the new end are pruned once the new version is written.
Embedding batch N+1 overlaps with writing batch N.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ailb.errors import InvalidRequestError
from ailb.rag.chunking import Chunker
from ailb.rag.models import DocumentInput, IngestResult, MetadataValue, StoredChunk

if TYPE_CHECKING:
    from ailb.embeddings.base import Embedder
    from ailb.rag.store import VectorStore

Progress = Callable[[int, int], None]  # (chunks written so far, chunks in total)
# The title line put in front of each chunk when embedding takes at most this much of the window.
_MAX_TITLE_TOKENS = 32


class IngestMetrics(Protocol):
    def rag_ingested(self, chunks: int) -> None: ...


@dataclass(frozen=True, slots=True)
class _Pending:
    document: DocumentInput
    position: int
    text: str
    last: bool  # the document's final chunk: prune what an older version had beyond it

    @property
    def embedded_text(self) -> str:
        title = self.document.title[:100]
        return f"{title}\n{self.text}" if title else self.text


class Ingestor:
    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        *,
        chunk_tokens: int,
        overlap_tokens: int,
        batch_size: int = 8,
        metrics: IngestMetrics | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self.batch_size = batch_size
        self.metrics = metrics

    async def ingest(
        self, collection: str, documents: Sequence[DocumentInput], progress: Progress | None = None
    ) -> IngestResult:
        check_unique(documents)
        await self.embedder.wait_ready()
        pending = await asyncio.to_thread(self._chunk_all, documents)
        counts = {doc.id: 0 for doc in documents}
        for item in pending:
            counts[item.document.id] += 1
        batches = [pending[i : i + self.batch_size] for i in range(0, len(pending), self.batch_size)]
        writing: asyncio.Task[None] | None = None
        written = 0
        try:
            for batch in batches:
                vectors = await self.embedder.embed([item.embedded_text for item in batch])
                if writing is not None:
                    await writing
                    written = self._written(written, self.batch_size, len(pending), progress)
                chunks = [_stored(item, vector) for item, vector in zip(batch, vectors, strict=True)]
                writing = asyncio.create_task(self._write(collection, batch, chunks))
            if writing is not None:
                await writing
                self._written(written, len(pending) - written, len(pending), progress)
        except BaseException:
            if writing is not None and not writing.done():
                await asyncio.wait([writing])  # let the write in flight finish before reporting the failure
            raise
        return IngestResult(collection, counts)

    def _written(self, before: int, added: int, total: int, progress: Progress | None) -> int:
        """Count ``added`` chunks as written (every batch but the last is full); returns the new total."""
        if self.metrics is not None:
            self.metrics.rag_ingested(added)
        if progress is not None:
            progress(before + added, total)
        return before + added

    def _chunk_all(self, documents: Sequence[DocumentInput]) -> list[_Pending]:
        pending: list[_Pending] = []
        for document in documents:
            texts = self._chunker(document.title).split(document.text)
            if not texts:
                raise InvalidRequestError(
                    f"Document {document.id!r} has no text to ingest.", param="documents", code="empty_document"
                )
            pending.extend(
                _Pending(document, position, text, position == len(texts) - 1) for position, text in enumerate(texts)
            )
        return pending

    def _chunker(self, title: str) -> Chunker:
        count = self.embedder.count_tokens
        overhead = count("")
        title_tokens = min(count(title) - overhead, _MAX_TITLE_TOKENS) if title else 0
        window = self.embedder.max_tokens - overhead - title_tokens
        return Chunker(count, max(8, min(self.chunk_tokens, window)), self.overlap_tokens)

    async def _write(self, collection: str, batch: Sequence[_Pending], chunks: Sequence[StoredChunk]) -> None:
        await self.store.write_chunks(collection, chunks)
        for item in batch:
            if item.last:
                await self.store.prune_document(collection, item.document.id, keep=item.position + 1)


def check_unique(documents: Sequence[DocumentInput]) -> None:
    seen: set[str] = set()
    for index, document in enumerate(documents):
        if document.id in seen:
            raise InvalidRequestError(
                f"Document id {document.id!r} appears twice in one request.",
                param=f"documents[{index}].id",
                code="duplicate_document_id",
            )
        seen.add(document.id)


def _stored(item: _Pending, vector: list[float]) -> StoredChunk:
    document = item.document
    metadata: Mapping[str, MetadataValue] = document.metadata
    return StoredChunk(
        document_id=document.id,
        position=item.position,
        text=item.text,
        embedding=vector,
        source=document.source or document.id,
        title=document.title,
        metadata=metadata,
    )
