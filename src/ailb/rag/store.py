"""The knowledge-base store contract: named collections of embedded chunks, searched by cosine similarity.

Two implementations keep it: ``ChromaVectorStore`` (``chroma_store.py``, on the ChromaDB seam) serves the
gateway and the CLI, ``InMemoryVectorStore`` (``inmemory.py``) the unit tests; one contract suite runs
against both. Both raise the same errors: ``collection_not_found`` for a collection that does not exist (no
call ever creates one implicitly), a 409 ``collection_exists`` when creating one twice, and
``RagStoreUnavailableError`` when the store itself fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ailb.errors import InvalidRequestError, NotFoundError
from ailb.rag.models import CollectionInfo, Passage, StoredChunk
from ailb.stores.errors import StoreUnavailableError


class RagStoreUnavailableError(StoreUnavailableError):
    code = "rag_store_unavailable"
    public_message = "The knowledge base store is unavailable; try again later."


def collection_not_found(name: str) -> NotFoundError:
    return NotFoundError(
        f"The knowledge base collection {name!r} does not exist.", param="rag_collection",
        code="collection_not_found",
    )  # fmt: skip


def collection_exists(name: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"The collection {name!r} already exists.", param="name", code="collection_exists", status=409
    )


class VectorStore(Protocol):
    @property
    def location(self) -> str:
        """Where the collections are, for log messages."""
        ...

    def opened_embedder(self, name: str) -> str | None:
        """The embedding model of a collection already seen to exist, without any I/O (None if not seen)."""
        ...

    async def connect(self) -> None:
        """Reach the store; ``RagStoreUnavailableError`` when it does not answer."""
        ...

    async def list_collections(self) -> list[CollectionInfo]:
        """Every collection, sorted by name."""
        ...

    async def create_collection(self, name: str, description: str, embedder: str) -> CollectionInfo: ...

    async def collection_info(self, name: str) -> CollectionInfo: ...

    async def require(self, name: str) -> str:
        """The embedding model that filled the collection; raises ``NotFoundError`` unless it exists."""
        ...

    async def delete_collection(self, name: str) -> None: ...

    async def write_chunks(self, name: str, chunks: Sequence[StoredChunk]) -> None:
        """Insert or replace ``chunks`` (ids are ``<document id>#<position>``)."""
        ...

    async def prune_document(self, name: str, document_id: str, keep: int) -> None:
        """Drop the chunks of ``document_id`` from position ``keep`` on (left over from a longer version)."""
        ...

    async def delete_document(self, name: str, document_id: str) -> int:
        """Remove every chunk of ``document_id``; returns how many there were."""
        ...

    async def query(self, name: str, embedding: Sequence[float], top_k: int) -> list[Passage]:
        """Up to ``top_k`` passages, best first; ``score`` is the cosine similarity to ``embedding``."""
        ...

    async def aclose(self) -> None: ...
