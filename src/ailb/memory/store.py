"""The conversation store contract. Every read and delete is scoped by (tenant, session): a session id alone
never reaches another tenant's turns.

Two implementations keep it: ``ChromaTurnStore`` (``chroma_store.py``, on the ChromaDB seam) serves the
gateway, ``InMemoryTurnStore`` (``inmemory.py``) the unit tests; one contract suite runs against both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ailb.memory.models import EmbeddedTurns, SessionView, StoredTurn
from ailb.stores.errors import StoreUnavailableError


class MemoryStoreError(StoreUnavailableError):
    """The conversation store failed (unreachable server, unwritable or corrupt files)."""

    code = "memory_unavailable"
    public_message = "The conversation memory store is unavailable; try again later."


class TurnStore(Protocol):
    description: str

    async def open(self) -> None:
        """Connect. Raises ``ConfigError`` for an unusable local folder, ``MemoryStoreError`` otherwise."""
        ...

    async def add(
        self, turns: Sequence[StoredTurn], embeddings: Sequence[Sequence[float] | None], dimensions: int
    ) -> None:
        """Store (or re-store) ``turns``; a turn without an embedding gets a placeholder of ``dimensions``
        and is left out of similarity search."""
        ...

    async def session_tokens(self, tenant: str, session_id: str) -> int:
        """The estimated tokens of all of a session's stored turns."""
        ...

    async def unembedded(self, tenant: str, session_id: str) -> list[StoredTurn]:
        """The session's turns stored without an embedding."""
        ...

    async def load_view(self, tenant: str, session_id: str, keep_recent: int, complete_limit: int) -> SessionView:
        """All of a session's turns when their tokens total at most ``complete_limit``, else the newest."""
        ...

    async def similar(
        self, tenant: str, session_id: str, embedding: Sequence[float], limit: int
    ) -> list[tuple[StoredTurn, float]]:
        """Up to ``limit`` embedded turns, most similar first, with their cosine similarity."""
        ...

    async def embedded_turns(self, tenant: str, session_id: str) -> EmbeddedTurns:
        """The session's embedded turns, oldest first, and their vectors (one row each), to search in process."""
        ...

    async def list_turns(self, tenant: str, session_id: str) -> list[StoredTurn]: ...

    async def delete_session(self, tenant: str, session_id: str) -> list[str]:
        """Erase a session's turns; returns their ids."""
        ...

    async def delete_older_than(self, cutoff: float) -> int: ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...
