"""The background writer: every change to the store goes through it.

Turns wait in a bounded queue and are written a batch at a time (the writer lingers ``linger`` seconds after the
first turn of a batch: queued turns are already visible to recall, and a batch costs ChromaDB about as much as
a single turn). A turn is embedded only when its session's
text exceeds the recall budget: a session within the budget is always recalled whole, without similarity
search, so its turns are stored with a placeholder vector (``embedded`` false) and cost no model time. When a
session first grows past the budget, its earlier turns are embedded too (backfill), so every turn a
similarity search can meet has a real vector; the vectors go to ``on_stored`` too, for the in-process
similarity index (``index.py``). Deletes and expiry hold the same lock as writes, and bump an
epoch that voids a backfill read before them (it would otherwise bring erased turns back).

Nothing here runs on the request path except ``submit``, a non-blocking enqueue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence

from ailb.embeddings.base import Embedder, EmbeddingError
from ailb.memory.cache import Key, SessionCache
from ailb.memory.models import StoredTurn, document_text
from ailb.memory.store import MemoryStoreError, TurnStore

log = logging.getLogger("ailb.memory")

MAX_FULLY_EMBEDDED = 65536


class TurnWriter:
    def __init__(
        self,
        store: TurnStore,
        embedder: Embedder,
        cache: SessionCache,
        *,
        budget: int,
        capacity: int,
        is_live: Callable[[StoredTurn], bool],
        on_stored: Callable[[list[StoredTurn], list[tuple[StoredTurn, list[float]]], float], None],
        on_failed: Callable[[Exception], None],
        on_dropped: Callable[[list[StoredTurn]], None],
        batch_size: int = 64,
        linger: float = 0.2,
        retry_delays: Sequence[float] = (1.0, 2.0),
        exclusive_store: bool = True,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.cache = cache
        self.budget = budget
        self.batch_size = batch_size
        self.linger = linger
        self.retry_delays = tuple(retry_delays)
        self._queue: asyncio.Queue[StoredTurn] = asyncio.Queue(maxsize=capacity)
        self._lock = asyncio.Lock()
        self._epoch = 0
        self._is_live = is_live
        self._on_stored = on_stored
        self._on_failed = on_failed
        self._on_dropped = on_dropped
        self._task: asyncio.Task[None] | None = None
        self._accepting = True
        self._writing = 0
        self.embedded_turns = 0
        # Sessions whose every stored turn is embedded: their backfill query is skipped (it would find nothing).
        # Only when no other process writes to the store; voided by deletes and expiry.
        self._exclusive_store = exclusive_store
        self._fully_embedded: set[Key] = set()

    @property
    def depth(self) -> int:
        """Turns not written yet: queued, and in the batch being written."""
        return self._queue.qsize() + self._writing

    def submit(self, stored: StoredTurn) -> bool:
        """Queue ``stored``; False when the queue is full or the writer is closing."""
        if not self._accepting:
            return False
        try:
            self._queue.put_nowait(stored)
        except asyncio.QueueFull:
            return False
        return True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ailb-memory-writer")

    async def flush(self) -> None:
        """Wait until every turn queued so far has been written (or has failed)."""
        await self._queue.join()

    async def erase(self, tenant: str, session_id: str) -> list[str]:
        async with self._lock:
            self._epoch += 1
            self._fully_embedded.discard((tenant, session_id))
            return await self.store.delete_session(tenant, session_id)

    async def expire(self, cutoff: float) -> int:
        async with self._lock:
            self._epoch += 1
            self._fully_embedded.clear()  # a session may shrink below the budget: its next turns go unembedded
            return await self.store.delete_older_than(cutoff)

    async def close(self, flush_seconds: float) -> int:
        """Stop accepting, write what is queued (within ``flush_seconds``), stop. Returns turns left unwritten."""
        self._accepting = False
        if self._task is not None and not self._task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), flush_seconds)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        left = self._queue.qsize()
        if left:
            log.warning("memory: %d turns were still queued at shutdown and are not stored", left)
        return left

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            self._writing = 1
            if self.linger and self._accepting:
                await asyncio.sleep(self.linger)  # one write of many turns costs little more than one of one
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._writing = len(batch)
            try:
                await self._write_with_retries(batch)
            except Exception:  # the writer must outlive any one bad batch
                log.exception("memory: writing a batch of %d turns failed", len(batch))
                self._on_dropped(batch)
            finally:
                self._writing = 0
                for _ in batch:
                    self._queue.task_done()

    async def _write_with_retries(self, batch: list[StoredTurn]) -> None:
        """A failed batch stays queued (and recallable) while it is tried again, then it is dropped."""
        for delay in (*self.retry_delays, None):
            try:
                await self._write(batch)
                return
            except (MemoryStoreError, EmbeddingError) as exc:
                self._on_failed(exc)
                if delay is None or not self._accepting:
                    log.warning("memory: %d turns could not be stored and are dropped: %s", len(batch), exc)
                    self._on_dropped(batch)
                    return
                await asyncio.sleep(delay)

    async def _write(self, batch: list[StoredTurn]) -> None:
        live = [stored for stored in batch if self._is_live(stored)]
        if not live:
            return
        epoch = self._epoch
        over = await self._sessions_over_budget(live)
        backfill = [t for key in over - self._fully_embedded for t in await self.store.unembedded(*key)]
        vectors = await self._embed([t for t in live if t.key in over] + backfill)
        async with self._lock:
            turns = [t for t in live if self._is_live(t)]
            current = epoch == self._epoch
            refreshed = backfill if current else []
            if not turns and not refreshed:
                return
            written = turns + refreshed
            embeddings = [vectors.get(t.id) for t in written]
            started = time.perf_counter()
            await self.store.add(written, embeddings, self.embedder.dimensions)
            if current and self._exclusive_store:
                self._note_fully_embedded(over)
            embedded = [(t, v) for t, v in zip(written, embeddings, strict=True) if v is not None]
            self._on_stored(turns, embedded, time.perf_counter() - started)

    def _note_fully_embedded(self, sessions: set[Key]) -> None:
        if len(self._fully_embedded) + len(sessions) > MAX_FULLY_EMBEDDED:
            self._fully_embedded.clear()  # bounded: a session forgotten here costs one backfill query again
        self._fully_embedded.update(sessions)

    async def _sessions_over_budget(self, turns: Sequence[StoredTurn]) -> set[Key]:
        """Sessions whose stored text, with ``turns``, exceeds the recall budget (all when dimensions are unknown)."""
        if not self.embedder.dimensions:
            return {t.key for t in turns}
        adding: Counter[Key] = Counter()
        for stored in turns:
            adding[stored.key] += stored.tokens
        over: set[Key] = set()
        for key, tokens in adding.items():
            view = self.cache.get(key)
            stored_tokens = view.total_tokens if view is not None else await self.store.session_tokens(*key)
            if stored_tokens + tokens > self.budget:
                over.add(key)
        return over

    async def _embed(self, turns: Sequence[StoredTurn]) -> dict[str, list[float]]:
        if not turns:
            return {}
        await self.embedder.wait_ready()
        vectors = await self.embedder.embed([document_text(t) for t in turns])
        self.embedded_turns += len(turns)
        return {t.id: vector for t, vector in zip(turns, vectors, strict=True)}
