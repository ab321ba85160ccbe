"""The RAG vocabulary: documents going in, passages coming out, and the rules for names and ids."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ailb.errors import InvalidRequestError

MetadataValue = str | int | float | bool

# Letters, digits, '.', '_' and '-', starting and ending with a letter or digit: ChromaDB- and URL-safe.
_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{1,61})[A-Za-z0-9]$")
# Document ids travel in URLs and in the comma-separated ``x-ailb-rag-sources`` header.
_DOCUMENT_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._:/@+-]{0,255}$")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._:/@+-]+")
MAX_METADATA_KEYS = 32
MAX_METADATA_TEXT = 1000


@dataclass(frozen=True, slots=True)
class DocumentInput:
    """One document to ingest. ``metadata`` is the caller's own (scalar values only)."""

    id: str
    text: str
    source: str = ""
    title: str = ""
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk ready for the store: its text, vector and where it came from."""

    document_id: str
    position: int
    text: str
    embedding: list[float]
    source: str
    title: str
    metadata: Mapping[str, MetadataValue]

    @property
    def id(self) -> str:
        return f"{self.document_id}#{self.position}"


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved chunk. ``score`` is the cosine similarity to the query (1 is identical)."""

    collection: str
    chunk_id: str
    document_id: str
    position: int
    text: str
    score: float
    source: str = ""
    title: str = ""
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.chunk_id,
            "document_id": self.document_id,
            "collection": self.collection,
            "position": self.position,
            "score": round(self.score, 6),
            "title": self.title,
            "source": self.source,
            "text": self.text,
            "metadata": dict(self.metadata),
        }


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    name: str
    description: str
    chunks: int
    created_at: float
    embedder: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "chunks": self.chunks,
            "created_at": int(self.created_at),
            "embedder": self.embedder,
        }


@dataclass(frozen=True, slots=True)
class IngestResult:
    collection: str
    documents: dict[str, int]  # document id -> chunks stored

    @property
    def chunks(self) -> int:
        return sum(self.documents.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "documents": [{"id": doc_id, "chunks": count} for doc_id, count in self.documents.items()],
            "chunks": self.chunks,
        }


@dataclass(slots=True)
class Retrieval:
    """What RAG adds to one chat request: the reference ``message`` (or None) and the cited document ids."""

    message: dict[str, Any] | None
    sources: list[str]
    passages: list[Passage] = field(default_factory=list)


def validate_collection_name(name: str, param: str = "name") -> str:
    if not isinstance(name, str) or not _COLLECTION_NAME.fullmatch(name) or ".." in name:
        raise InvalidRequestError(
            f"Invalid collection name {name!r}: use 3-63 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit.",
            param=param,
            code="invalid_collection_name",
        )
    return name


def validate_document_id(doc_id: str, param: str = "id") -> str:
    if not isinstance(doc_id, str) or not _DOCUMENT_ID.fullmatch(doc_id):
        raise InvalidRequestError(
            f"Invalid document id {doc_id!r}: use 1-256 letters, digits or '._:/@+-' "
            "(starting with a letter, digit or '_').",
            param=param,
            code="invalid_document_id",
        )
    return doc_id


def document_id_for(name: str) -> str:
    """A valid document id derived from a file path or name (unsafe characters become '-')."""
    cleaned = _ID_UNSAFE.sub("-", name.replace("\\", "/")).strip("-/.")[:256]
    if not cleaned or not _DOCUMENT_ID.fullmatch(cleaned):
        cleaned = "doc-" + hashlib.sha256(name.encode()).hexdigest()[:16]
    return cleaned


def content_id(text: str) -> str:
    """The id of a document given without one: the same text always gets the same id."""
    return "doc-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def validate_metadata(metadata: Any, param: str = "metadata") -> dict[str, MetadataValue]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidRequestError("metadata must be an object.", param=param, code="invalid_value")
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidRequestError(
            f"metadata takes at most {MAX_METADATA_KEYS} keys.", param=param, code="invalid_value"
        )
    checked: dict[str, MetadataValue] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key or key.startswith("_") or len(key) > 64:
            raise InvalidRequestError(
                f"metadata key {key!r} is not allowed: 1-64 characters, not starting with '_'.",
                param=param,
                code="invalid_value",
            )
        if not isinstance(value, str | int | float | bool) or (
            isinstance(value, str) and len(value) > MAX_METADATA_TEXT
        ):
            raise InvalidRequestError(
                f"metadata value of {key!r} must be a string (up to {MAX_METADATA_TEXT} characters), "
                "a number or a boolean.",
                param=f"{param}.{key}",
                code="invalid_value",
            )
        checked[key] = value
    return checked
