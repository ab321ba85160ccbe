"""The OpenAI embeddings API (``POST /v1/embeddings``): request (validation, OpenAPI) and answer (OpenAPI)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from ailb.ingress.validation import Schema

MAX_INPUTS = 2048  # OpenAI's limit per request


class EmbeddingRequest(Schema):
    model: Annotated[str, msgspec.Meta(min_length=1)]
    input: str | Annotated[list[Any], msgspec.Meta(min_length=1, max_length=MAX_INPUTS)]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, msgspec.Meta(ge=1, le=65536)] | None = None
    user: str | None = None
    routing_strategy: str | None = None  # AILB's own (never forwarded)


EMBEDDING_FIELDS = frozenset(EmbeddingRequest.__struct_fields__)


class Embedding(Schema):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str


class EmbeddingUsage(Schema):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(Schema):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
