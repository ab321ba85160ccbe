"""One embeddings interface for memory and RAG."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Embedder(Protocol):
    """Turns texts into unit-length vectors. ``embed`` is async: the work runs off the event loop."""

    name: str
    dimensions: int
    max_tokens: int

    @property
    def ready(self) -> bool:
        """False while the model is still loading (start-up loads it in the background)."""
        ...

    async def wait_ready(self) -> None: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's window (for chunking)."""
        ...

    async def aclose(self) -> None: ...
