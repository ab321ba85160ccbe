"""``InMemoryVectorStore``: the knowledge-base store contract in plain Python, for tests and tools that need no
ChromaDB. Same semantics as ``ChromaVectorStore`` (the contract suite runs against both): collections are
never created implicitly, chunk ids replace each other, scores are cosine similarity, best first. Nothing
survives the process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ailb.rag.models import CollectionInfo, Passage, StoredChunk
from ailb.rag.store import RagStoreUnavailableError, collection_exists, collection_not_found
from ailb.stores.vectors import cosine_similarity


@dataclass(slots=True)
class _Collection:
    description: str
    embedder: str
    created_at: float
    chunks: dict[str, StoredChunk] = field(default_factory=dict)
    dimensions: int | None = None  # fixed by the first vector, as in ChromaDB

    def info(self, name: str) -> CollectionInfo:
        return CollectionInfo(name, self.description, len(self.chunks), self.created_at, self.embedder)

    def check_dimensions(self, dimensions: int) -> None:
        if self.dimensions is None:
            self.dimensions = dimensions
        elif dimensions != self.dimensions:
            raise RagStoreUnavailableError(  # what ChromaDB refuses too
                f"The collection holds vectors of {self.dimensions} dimensions, not {dimensions}."
            )


class InMemoryVectorStore:
    location = "in-memory store"

    def __init__(self) -> None:
        self._collections: dict[str, _Collection] = {}

    def opened_embedder(self, name: str) -> str | None:
        found = self._collections.get(name)
        return None if found is None else found.embedder

    async def connect(self) -> None:
        return None

    async def list_collections(self) -> list[CollectionInfo]:
        return [self._collections[name].info(name) for name in sorted(self._collections)]

    async def create_collection(self, name: str, description: str, embedder: str) -> CollectionInfo:
        if name in self._collections:
            raise collection_exists(name)
        self._collections[name] = _Collection(description, embedder, time.time())
        return self._collections[name].info(name)

    async def collection_info(self, name: str) -> CollectionInfo:
        return self._get(name).info(name)

    async def require(self, name: str) -> str:
        return self._get(name).embedder

    async def delete_collection(self, name: str) -> None:
        self._get(name)
        del self._collections[name]

    async def write_chunks(self, name: str, chunks: Sequence[StoredChunk]) -> None:
        if not chunks:
            return
        collection = self._get(name)
        for chunk in chunks:  # every vector is checked before any is written, as one upsert does
            collection.check_dimensions(len(chunk.embedding))
        for chunk in chunks:  # a copy: the caller's lists stay the caller's
            collection.chunks[chunk.id] = replace(chunk, embedding=list(chunk.embedding), metadata=dict(chunk.metadata))

    async def prune_document(self, name: str, document_id: str, keep: int) -> None:
        self._remove(name, lambda c: c.document_id == document_id and c.position >= keep)

    async def delete_document(self, name: str, document_id: str) -> int:
        return self._remove(name, lambda c: c.document_id == document_id)

    async def query(self, name: str, embedding: Sequence[float], top_k: int) -> list[Passage]:
        collection = self._get(name)
        if collection.dimensions is not None:
            collection.check_dimensions(len(embedding))
        scored = [(cosine_similarity(c.embedding, embedding), c) for c in collection.chunks.values()]
        scored.sort(key=lambda pair: pair[0], reverse=True)
        return [_passage(name, chunk, score) for score, chunk in scored[:top_k]]

    async def aclose(self) -> None:
        return None

    def _get(self, name: str) -> _Collection:
        found = self._collections.get(name)
        if found is None:
            raise collection_not_found(name)
        return found

    def _remove(self, name: str, doomed: Callable[[StoredChunk], bool]) -> int:
        chunks = self._get(name).chunks
        ids = [chunk_id for chunk_id, chunk in chunks.items() if doomed(chunk)]
        for chunk_id in ids:
            del chunks[chunk_id]
        return len(ids)


def _passage(collection: str, chunk: StoredChunk, score: float) -> Passage:
    return Passage(
        collection=collection,
        chunk_id=chunk.id,
        document_id=chunk.document_id,
        position=chunk.position,
        text=chunk.text,
        score=score,
        source=chunk.source,
        title=chunk.title,
        metadata=dict(chunk.metadata),
    )
