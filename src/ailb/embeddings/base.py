"""One embeddings interface for memory and RAG."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ailb.errors import AILBError


class Embedder(Protocol):
    """Turns texts into unit-length vectors. ``embed`` is async: the work runs off the event loop.

    ``name`` identifies the model (vectors from different names are not comparable); ``dimensions`` is 0 until
    known (a provider model reports it with its first answer).
    """

    name: str
    dimensions: int
    max_tokens: int

    @property
    def ready(self) -> bool:
        """False while the model is still loading (start-up loads it in the background)."""
        ...

    def status(self) -> str:
        """``"ok"``, ``"loading"`` or ``"failed"`` (the model could not be loaded)."""
        ...

    async def start(self) -> None:
        """Begin loading in the background and return at once. Idempotent."""
        ...

    async def wait_ready(self) -> None:
        """Wait until the model is loaded; raise ``EmbeddingError`` if it cannot be."""
        ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order (raises ``EmbeddingError``)."""
        ...

    async def embed_query(self, text: str, max_tokens: int | None = None) -> list[float]:
        """The vector of one search query, or of its first ``max_tokens`` tokens when given (a long text then costs
        the model no more than a short one); recent queries are answered from a bounded cache."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's window (for chunking)."""
        ...

    async def aclose(self) -> None: ...


class EmbeddingError(AILBError):
    """The embedding model is unavailable (failed to load, or its provider failed)."""

    status = 503
    type = "server_error"
    code = "embeddings_unavailable"
