"""The background writer: turns wait in a bounded queue; a batch at a time is embedded, then stored.

Nothing here runs on the request path except ``submit``, a non-blocking enqueue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from ailb.embeddings.base import Embedder, EmbeddingError
from ailb.memory.models import StoredTurn, document_text
from ailb.memory.store import MemoryStoreError, TurnStore

log = logging.getLogger("ailb.memory")


class TurnWriter:
    """Drains the queue in batches of up to ``batch_size``.

    ``is_live`` is asked just before storing (a session erased meanwhile drops its queued turns);
    ``lock`` serializes writes with deletes, so a delete never races a batch of the same session.
    """

    def __init__(
        self,
        store: TurnStore,
        embedder: Embedder,
        *,
        capacity: int,
        lock: asyncio.Lock,
        is_live: Callable[[StoredTurn], bool],
        on_stored: Callable[[list[StoredTurn], float], None],
        on_failed: Callable[[list[StoredTurn], Exception], None],
        batch_size: int = 64,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.batch_size = batch_size
        self._queue: asyncio.Queue[StoredTurn] = asyncio.Queue(maxsize=capacity)
        self._lock = lock
        self._is_live = is_live
        self._on_stored = on_stored
        self._on_failed = on_failed
        self._task: asyncio.Task[None] | None = None
        self._accepting = True

    @property
    def depth(self) -> int:
        return self._queue.qsize()

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
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except Exception as exc:  # the writer must outlive any one bad batch
                log.exception("memory: writing a batch of %d turns failed", len(batch))
                self._on_failed(batch, exc)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[StoredTurn]) -> None:
        live = [stored for stored in batch if self._is_live(stored)]
        if not live:
            return
        try:
            await self.embedder.wait_ready()
            vectors = await self.embedder.embed([document_text(stored) for stored in live])
            async with self._lock:
                pairs = [
                    (stored, vector) for stored, vector in zip(live, vectors, strict=True) if self._is_live(stored)
                ]
                if not pairs:
                    return
                started = time.perf_counter()
                await self.store.add([stored for stored, _ in pairs], [vector for _, vector in pairs])
                self._on_stored([stored for stored, _ in pairs], time.perf_counter() - started)
        except (MemoryStoreError, EmbeddingError) as exc:
            log.warning("memory: %d turns could not be stored: %s", len(live), exc)
            self._on_failed(live, exc)
