"""ChromaDB operations on knowledge-base collections. They run where the client lives (a worker process for an
embedded store, a thread for a server) through the ChromaDB seam, ``ailb.stores.chroma``, which connects,
locks, reconnects and translates failures; this module only knows how a knowledge base is laid out.

Collections are stored under a ``rag_`` prefix so that a shared ChromaDB server can also hold memory. A missing
collection surfaces as the seam's ``CollectionMissing``; the errors raised here (``collection_exists``) cross
the process boundary intact.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from ailb.rag.models import CollectionInfo, MetadataValue, Passage, StoredChunk
from ailb.rag.store import collection_exists
from ailb.stores.chroma import ChromaConnection, similarity
from ailb.stores.errors import CollectionMissing

PREFIX = "rag_"
# Our chunk metadata keys start with '_' (callers' keys may not), so the two never collide.
DOC, SOURCE, TITLE, POSITION = "_doc", "_source", "_title", "_position"


# --- collections: each operation takes the seam's connection first -----------------------------------------------
def list_collections(connection: ChromaConnection) -> list[CollectionInfo]:
    infos = [_info(c) for c in connection.list_collections() if c.name.startswith(PREFIX)]
    return sorted(infos, key=lambda info: info.name)


def create_collection(connection: ChromaConnection, name: str, description: str, embedder: str) -> CollectionInfo:
    try:
        connection.collection(PREFIX + name)
    except CollectionMissing:
        metadata = {"ailb": "rag", "description": description, "created_at": time.time(), "embedder": embedder}
        return _info(connection.create_collection(PREFIX + name, metadata))
    raise collection_exists(name)


def require(connection: ChromaConnection, name: str) -> str:
    return _embedder_of(connection.collection(PREFIX + name))


def collection_info(connection: ChromaConnection, name: str) -> CollectionInfo:
    return _info(connection.collection(PREFIX + name))


def delete_collection(connection: ChromaConnection, name: str) -> None:
    connection.collection(PREFIX + name)  # CollectionMissing unless it exists
    connection.delete_collection(PREFIX + name)


# --- documents ----------------------------------------------------------------------------------------------------
def write_chunks(connection: ChromaConnection, name: str, chunks: Sequence[StoredChunk]) -> None:
    if not chunks:
        return
    connection.collection(PREFIX + name).upsert(
        ids=[c.id for c in chunks],
        embeddings=[c.embedding for c in chunks],
        documents=[c.text for c in chunks],
        metadatas=[_chunk_metadata(c) for c in chunks],
    )


def prune_document(connection: ChromaConnection, name: str, document_id: str, keep: int) -> None:
    where = {"$and": [{DOC: document_id}, {POSITION: {"$gte": keep}}]}
    connection.collection(PREFIX + name).delete(where=where)


def delete_document(connection: ChromaConnection, name: str, document_id: str) -> int:
    handle = connection.collection(PREFIX + name)
    ids = list(handle.get(where={DOC: document_id}, include=[])["ids"])
    if ids:
        handle.delete(ids=ids)
    return len(ids)


def query(connection: ChromaConnection, name: str, embedding: Sequence[float], top_k: int) -> list[Passage]:
    result = connection.collection(PREFIX + name).query(
        query_embeddings=[list(embedding)], n_results=top_k, include=["documents", "metadatas", "distances"]
    )
    ids = result["ids"][0]
    texts = (result.get("documents") or [[]])[0]
    metadatas = (result.get("metadatas") or [[]])[0]
    distances = (result.get("distances") or [[]])[0]
    return [
        _passage(name, chunk_id, text or "", metadata or {}, distance)
        for chunk_id, text, metadata, distance in zip(ids, texts, metadatas, distances, strict=True)
    ]


# --- layout -------------------------------------------------------------------------------------------------------
def _info(handle: Any) -> CollectionInfo:
    metadata: Mapping[str, Any] = handle.metadata or {}
    return CollectionInfo(
        name=handle.name[len(PREFIX) :],
        description=str(metadata.get("description", "")),
        chunks=int(handle.count()),
        created_at=float(metadata.get("created_at", 0.0)),
        embedder=_embedder_of(handle),
    )


def _embedder_of(handle: Any) -> str:
    return str((handle.metadata or {}).get("embedder", ""))


def _chunk_metadata(chunk: StoredChunk) -> dict[str, MetadataValue]:
    metadata: dict[str, MetadataValue] = dict(chunk.metadata)
    metadata[DOC] = chunk.document_id
    metadata[POSITION] = chunk.position
    metadata[SOURCE] = chunk.source
    metadata[TITLE] = chunk.title
    return metadata


def _passage(collection: str, chunk_id: str, text: str, metadata: Mapping[str, Any], distance: float) -> Passage:
    own = {k: v for k, v in metadata.items() if not k.startswith("_")}
    return Passage(
        collection=collection,
        chunk_id=chunk_id,
        document_id=str(metadata.get(DOC, chunk_id.rsplit("#", 1)[0])),
        position=int(metadata.get(POSITION, 0)),
        text=text,
        score=similarity(distance),
        source=str(metadata.get(SOURCE, "")),
        title=str(metadata.get(TITLE, "")),
        metadata=own,
    )
