"""``InMemoryTurnStore``: the conversation store contract in plain Python, for tests and tools that need no
ChromaDB. Same semantics as ``ChromaTurnStore`` (the contract suite runs against both): every read and delete
is scoped by (tenant, session), turns come back oldest first, similarity is cosine over the stored vectors and
only embedded turns are searched. Nothing survives the process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ailb.memory.models import EmbeddedTurns, SessionView, StoredTurn
from ailb.memory.store import MemoryStoreError
from ailb.stores.vectors import cosine_similarity


@dataclass(frozen=True, slots=True)
class _Row:
    turn: StoredTurn
    vector: tuple[float, ...] | None  # None: stored without an embedding, never searched


class InMemoryTurnStore:
    description = "in-memory store"

    def __init__(self) -> None:
        self._rows: dict[str, _Row] = {}
        self._dimensions: int | None = None

    async def open(self) -> None:
        return None

    async def add(
        self, turns: Sequence[StoredTurn], embeddings: Sequence[Sequence[float] | None], dimensions: int
    ) -> None:
        rows = [_Row(t, None if v is None else tuple(v)) for t, v in zip(turns, embeddings, strict=True)]
        for row in rows:  # like ChromaDB, a collection holds vectors of one size: check all before writing any
            self._check_dimensions(dimensions if row.vector is None else len(row.vector))
        for row in rows:
            self._rows[row.turn.id] = row

    async def session_tokens(self, tenant: str, session_id: str) -> int:
        return sum(t.tokens for t in self._session(tenant, session_id))

    async def unembedded(self, tenant: str, session_id: str) -> list[StoredTurn]:
        return [t for t in self._session(tenant, session_id) if self._rows[t.id].vector is None]

    async def load_view(self, tenant: str, session_id: str, keep_recent: int, complete_limit: int) -> SessionView:
        turns = self._session(tenant, session_id)
        total = sum(t.tokens for t in turns)
        complete = total <= complete_limit
        kept = turns if complete else turns[max(0, len(turns) - keep_recent) :] if keep_recent else []
        return SessionView(count=len(turns), total_tokens=total, turns=kept, complete=complete)

    async def similar(
        self, tenant: str, session_id: str, embedding: Sequence[float], limit: int
    ) -> list[tuple[StoredTurn, float]]:
        if self._dimensions is not None:
            self._check_dimensions(len(embedding))
        scored: list[tuple[StoredTurn, float]] = []
        for stored in self._session(tenant, session_id):
            vector = self._rows[stored.id].vector
            if vector is not None:
                scored.append((stored, cosine_similarity(vector, embedding)))
        scored.sort(key=lambda pair: pair[1], reverse=True)
        return scored[:limit]

    async def embedded_turns(self, tenant: str, session_id: str) -> EmbeddedTurns:
        rows = [row for t in self._session(tenant, session_id) if (row := self._rows[t.id]).vector is not None]
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        return [row.turn for row in rows], np.asarray([row.vector for row in rows], dtype=np.float32)

    async def list_turns(self, tenant: str, session_id: str) -> list[StoredTurn]:
        return self._session(tenant, session_id)

    async def delete_session(self, tenant: str, session_id: str) -> list[str]:
        ids = [t.id for t in self._session(tenant, session_id)]
        for turn_id in ids:
            del self._rows[turn_id]
        return ids

    async def delete_older_than(self, cutoff: float) -> int:
        old = [turn_id for turn_id, row in self._rows.items() if row.turn.timestamp < cutoff]
        for turn_id in old:
            del self._rows[turn_id]
        return len(old)

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def _session(self, tenant: str, session_id: str) -> list[StoredTurn]:
        """The session's turns, oldest first."""
        turns = [r.turn for r in self._rows.values() if r.turn.key == (tenant, session_id)]
        turns.sort(key=lambda t: t.timestamp)
        return turns

    def _check_dimensions(self, dimensions: int) -> None:
        if self._dimensions is None:
            self._dimensions = dimensions
        elif dimensions != self._dimensions:
            raise MemoryStoreError(f"The store holds vectors of {self._dimensions} dimensions, not {dimensions}.")
