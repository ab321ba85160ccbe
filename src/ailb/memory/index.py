"""Similarity search of a session's older turns in this process, without a store call per request.

A long session's recall asks for the stored turns most like the new message. ChromaDB answers that with a
filtered query whose cost grows with the whole collection (every tenant's turns: about 17 ms at 2,000 turns
and 40 ms at 10,000 on a 2-CPU machine), and it waits behind the writer's upserts in the store's one worker.
So a session's embedded turns and their vectors are read once, kept here, and extended by the writer with the
vectors it has just computed; a search is then one matrix product over the session's own turns.

Bounded by sessions and by bytes held (vectors plus text). A load that was in flight while its session changed
is used for that one request but not cached (as for session views, ``cache.py``). Stores shared by several
processes (a ChromaDB server) are searched in the store instead: another process may write to them.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

import numpy as np
import numpy.typing as npt

from ailb.memory.cache import Key
from ailb.memory.models import EmbeddedTurns, StoredTurn
from ailb.memory.store import MemoryStoreError

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class SessionIndex:
    """The embedded turns of one session and their unit vectors, one row each."""

    def __init__(self, dimensions: int) -> None:
        self.turns: list[StoredTurn] = []
        self._rows: dict[str, int] = {}
        self._matrix: npt.NDArray[np.float32] = np.zeros((0, dimensions), dtype=np.float32)
        self._text_bytes = 0

    @classmethod
    def of(cls, embedded: EmbeddedTurns, dimensions: int) -> SessionIndex:
        """An index of what ``TurnStore.embedded_turns`` returned; ``ValueError`` for vectors of another size."""
        turns, vectors = embedded
        index = cls(dimensions)
        if turns:
            if vectors.shape != (len(turns), dimensions):
                raise ValueError(f"vectors of shape {vectors.shape} for {len(turns)} turns of {dimensions} dimensions")
            index._matrix = np.array(vectors, dtype=np.float32)
            index._rows = {stored.id: row for row, stored in enumerate(turns)}
            index.turns = list(turns)
            index._text_bytes = sum(len(t.turn.user) + len(t.turn.assistant) for t in turns)
        return index

    def __len__(self) -> int:
        return len(self.turns)

    @property
    def dimensions(self) -> int:
        return int(self._matrix.shape[1])

    def add(self, stored: StoredTurn, vector: Sequence[float]) -> None:
        row = np.asarray(vector, dtype=np.float32)
        if row.shape != (self.dimensions,):
            raise ValueError(f"a vector of {row.shape[0]} dimensions in an index of {self.dimensions}")
        position = self._rows.get(stored.id)
        if position is not None:
            self._matrix[position] = row
            return
        if len(self.turns) == self._matrix.shape[0]:  # grow by half: appends stay cheap
            grown = np.zeros((max(8, len(self.turns) * 3 // 2), self.dimensions), dtype=np.float32)
            grown[: len(self.turns)] = self._matrix[: len(self.turns)]
            self._matrix = grown
        self._rows[stored.id] = len(self.turns)
        self._matrix[len(self.turns)] = row
        self.turns.append(stored)
        self._text_bytes += len(stored.turn.user) + len(stored.turn.assistant)

    @property
    def nbytes(self) -> int:
        """What the index holds: its vectors (with room to grow) and its turns' text."""
        return self._matrix.nbytes + self._text_bytes

    def similar(self, query: Sequence[float], limit: int) -> list[tuple[StoredTurn, float]]:
        """Up to ``limit`` turns, most similar first, with their cosine similarity (vectors are unit length)."""
        count = len(self.turns)
        if not count or limit <= 0:
            return []
        scores = self._matrix[:count] @ np.asarray(query, dtype=np.float32)
        if limit < count:
            best = np.argpartition(-scores, limit - 1)[:limit]
            best = best[np.argsort(-scores[best], kind="stable")]
        else:
            best = np.argsort(-scores, kind="stable")
        return [(self.turns[i], float(scores[i])) for i in best.tolist()]


class IndexCache:
    """A bounded LRU of session indexes, kept current by the writer (``add``) and by deletes."""

    def __init__(self, capacity: int, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.held_bytes = 0
        self._indexes: OrderedDict[Key, SessionIndex] = OrderedDict()
        self._loads: dict[Key, object] = {}
        self._loading: dict[Key, asyncio.Future[SessionIndex]] = {}

    async def similar(
        self, key: Key, query: Sequence[float], limit: int, load: Callable[[], Awaitable[EmbeddedTurns]]
    ) -> list[tuple[StoredTurn, float]]:
        """Search the session's index; a missing one is built from ``load()`` (the store's ``embedded_turns``),
        once for every request that waits on it meanwhile."""
        index = self.get(key)
        if index is None:
            loading = self._loading.get(key)
            if loading is None:
                loading = self._loading[key] = asyncio.ensure_future(self._load(key, load, len(query)))
                loading.add_done_callback(lambda done: self._loaded(key, done))
            index = await asyncio.shield(loading)  # a waiter that gives up does not cancel the others' load
        return index.similar(query, limit)

    async def _load(self, key: Key, load: Callable[[], Awaitable[EmbeddedTurns]], dimensions: int) -> SessionIndex:
        token = self.begin_load(key)
        index = None
        try:
            index = SessionIndex.of(await load(), dimensions)
        except ValueError as exc:
            raise MemoryStoreError(f"The stored vectors do not fit the embedding model: {exc}") from exc
        finally:
            self.finish_load(key, token, index)
        return index

    def _loaded(self, key: Key, done: asyncio.Future[SessionIndex]) -> None:
        if self._loading.get(key) is done:
            del self._loading[key]
        if not done.cancelled():
            done.exception()  # retrieved here: every waiter may have gone (each reports the failure it saw)

    def get(self, key: Key) -> SessionIndex | None:
        index = self._indexes.get(key)
        if index is not None:
            self._indexes.move_to_end(key)
        return index

    def begin_load(self, key: Key) -> object:
        token = object()
        self._loads[key] = token
        return token

    def finish_load(self, key: Key, token: object, index: SessionIndex | None) -> None:
        """Cache ``index`` unless its session changed while it was loading (or the load failed: None)."""
        if self._loads.get(key) is not token:
            return
        del self._loads[key]
        if index is not None and self.capacity > 0 and index.nbytes <= self.max_bytes:
            self.invalidate(key)
            self._indexes[key] = index
            self.held_bytes += index.nbytes
            self._evict()

    def add(self, stored: StoredTurn, vector: Sequence[float]) -> None:
        """A turn just stored with ``vector``: extend its session's index (and void a load in flight)."""
        key = stored.key
        self._loads.pop(key, None)
        index = self._indexes.get(key)
        if index is None:
            return
        if len(vector) != index.dimensions:  # the model changed under a cached index: read it again later
            self.invalidate(key)
            return
        before = index.nbytes
        index.add(stored, vector)
        self.held_bytes += index.nbytes - before
        self._evict()

    def invalidate(self, key: Key) -> None:
        self._loads.pop(key, None)
        index = self._indexes.pop(key, None)
        if index is not None:
            self.held_bytes -= index.nbytes

    def clear(self) -> None:
        self._loads.clear()
        self._indexes.clear()
        self.held_bytes = 0

    def _evict(self) -> None:
        while self._indexes and (len(self._indexes) > self.capacity or self.held_bytes > self.max_bytes):
            _, index = self._indexes.popitem(last=False)
            self.held_bytes -= index.nbytes

    def __len__(self) -> int:
        return len(self._indexes)
