"""The ChromaDB seam for knowledge-base collections (the only RAG module that imports chromadb).

Every method blocks; ``ailb.rag.store.RagStore`` runs them where the client lives (a worker process for an
embedded store, threads for a server). ChromaDB failures become ``ailb.errors`` here: a missing collection is a
``NotFoundError``, anything else a ``RagStoreUnavailableError`` (503). Both cross a process boundary intact.
Collections are stored under a ``rag_`` prefix so that a shared ChromaDB server can also hold memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ailb.errors import AILBError, InvalidRequestError, NotFoundError
from ailb.rag.models import CollectionInfo, MetadataValue, Passage, StoredChunk

log = logging.getLogger("ailb.rag")

PREFIX = "rag_"
# Our chunk metadata keys start with '_' (callers' keys may not), so the two never collide.
DOC, SOURCE, TITLE, POSITION = "_doc", "_source", "_title", "_position"
_T = TypeVar("_T")


class RagStoreUnavailableError(AILBError):
    status = 503
    type = "server_error"
    code = "rag_store_unavailable"
    public_message = "The knowledge base store is unavailable; try again later."


def collection_not_found(name: str) -> NotFoundError:
    return NotFoundError(
        f"The knowledge base collection {name!r} does not exist.", param="rag_collection",
        code="collection_not_found",
    )  # fmt: skip


class ChromaCollections:
    """Collections in an embedded ChromaDB under ``path``, or on the ChromaDB server at ``host:port``."""

    def __init__(self, *, path: str, host: str = "", port: int = 8000) -> None:
        self.path = path
        self.host = host
        self.port = port
        self._client: Any = None
        self._handles: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        return f"chromadb://{self.host}:{self.port}" if self.host else self.path

    def connect(self) -> None:
        with self._lock:
            if self._client is None:
                self._client = self._guard("connect", self._open)

    def _open(self) -> Any:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False)
        if self.host:
            return chromadb.HttpClient(host=self.host, port=self.port, settings=settings)
        return chromadb.PersistentClient(path=self.path, settings=settings)

    def close(self) -> None:
        with self._lock:
            self._handles.clear()
            self._client = None

    # --- collections --------------------------------------------------------------------------------------
    def list_collections(self) -> list[CollectionInfo]:
        client = self._connected()
        found = self._guard("list", lambda: list(client.list_collections()))
        infos = [self._info(c) for c in found if c.name.startswith(PREFIX)]
        return sorted(infos, key=lambda info: info.name)

    def create_collection(self, name: str, description: str, embedder: str) -> CollectionInfo:
        client = self._connected()
        if self._exists(name):
            raise InvalidRequestError(
                f"The collection {name!r} already exists.", param="name", code="collection_exists", status=409
            )
        metadata = {"ailb": "rag", "description": description, "created_at": time.time(), "embedder": embedder}
        handle = self._guard(
            "create",
            lambda: client.create_collection(
                PREFIX + name, configuration={"hnsw": {"space": "cosine"}}, metadata=metadata,
                embedding_function=None,
            ),
        )  # fmt: skip
        self._handles[name] = handle
        return self._info(handle)

    def require(self, name: str) -> str:
        """The embedding model that filled the collection; raises ``NotFoundError`` unless it exists."""
        return _embedder_of(self._handle(name))

    def collection_info(self, name: str) -> CollectionInfo:
        return self._info(self._handle(name))

    def delete_collection(self, name: str) -> None:
        client = self._connected()
        self._handle(name)
        self._handles.pop(name, None)
        self._guard("delete", lambda: client.delete_collection(PREFIX + name), missing=name)

    # --- documents ----------------------------------------------------------------------------------------
    def write_chunks(self, name: str, chunks: Sequence[StoredChunk]) -> None:
        """Insert or replace ``chunks`` (ids are ``<document id>#<position>``)."""
        if not chunks:
            return
        handle = self._handle(name)
        self._guard(
            "upsert",
            lambda: handle.upsert(
                ids=[c.id for c in chunks],
                embeddings=[c.embedding for c in chunks],
                documents=[c.text for c in chunks],
                metadatas=[_chunk_metadata(c) for c in chunks],
            ),
            missing=name,
        )

    def prune_document(self, name: str, document_id: str, keep: int) -> None:
        """Drop the chunks of ``document_id`` from position ``keep`` on (left over from a longer version)."""
        handle = self._handle(name)
        where = {"$and": [{DOC: document_id}, {POSITION: {"$gte": keep}}]}
        self._guard("prune", lambda: handle.delete(where=where), missing=name)

    def delete_document(self, name: str, document_id: str) -> int:
        """Remove every chunk of ``document_id``; returns how many there were."""
        handle = self._handle(name)
        found = self._guard("get", lambda: handle.get(where={DOC: document_id}, include=[]), missing=name)
        ids = list(found["ids"])
        if ids:
            self._guard("delete", lambda: handle.delete(ids=ids), missing=name)
        return len(ids)

    def query(self, name: str, embedding: Sequence[float], top_k: int) -> list[Passage]:
        handle = self._handle(name)
        result = self._guard(
            "query",
            lambda: handle.query(
                query_embeddings=[list(embedding)], n_results=top_k, include=["documents", "metadatas", "distances"]
            ),
            missing=name,
        )
        ids = result["ids"][0]
        texts = (result.get("documents") or [[]])[0]
        metadatas = (result.get("metadatas") or [[]])[0]
        distances = (result.get("distances") or [[]])[0]
        return [
            _passage(name, chunk_id, text or "", metadata or {}, distance)
            for chunk_id, text, metadata, distance in zip(ids, texts, metadatas, distances, strict=True)
        ]

    # --- plumbing -----------------------------------------------------------------------------------------
    def _connected(self) -> Any:
        if self._client is None:
            self.connect()
        return self._client

    def _exists(self, name: str) -> bool:
        try:
            self._handle(name)
        except NotFoundError:
            return False
        return True

    def _handle(self, name: str) -> Any:
        handle = self._handles.get(name)
        if handle is None:
            client = self._connected()
            handle = self._guard(
                "open", lambda: client.get_collection(PREFIX + name, embedding_function=None), missing=name
            )
            self._handles[name] = handle
        return handle

    def _info(self, handle: Any) -> CollectionInfo:
        metadata: Mapping[str, Any] = handle.metadata or {}
        return CollectionInfo(
            name=handle.name[len(PREFIX) :],
            description=str(metadata.get("description", "")),
            chunks=int(self._guard("count", handle.count)),
            created_at=float(metadata.get("created_at", 0.0)),
            embedder=_embedder_of(handle),
        )

    def _guard(self, operation: str, call: Callable[[], _T], missing: str | None = None) -> _T:
        from chromadb.errors import NotFoundError as ChromaNotFound

        try:
            return call()
        except ChromaNotFound as exc:
            if missing is None:
                raise RagStoreUnavailableError(f"The knowledge base store failed ({operation}).") from exc
            self._handles.pop(missing, None)
            raise collection_not_found(missing) from exc
        except AILBError:
            raise
        except Exception as exc:  # chromadb raises many unrelated types (sqlite, HTTP, Rust bindings)
            log.warning("rag store %s failed at %s: %s", operation, self.location, exc)
            raise RagStoreUnavailableError("The knowledge base store is unavailable; try again later.") from exc


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
        score=1.0 - float(distance),
        source=str(metadata.get(SOURCE, "")),
        title=str(metadata.get(TITLE, "")),
        metadata=own,
    )
