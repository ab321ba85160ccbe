"""MemoryService: a session's turns are remembered after each whole answer and recalled before the next request.

Memory is keyed by (tenant, session id). Recall reads a cached view of the session (no store call once cached)
plus turns still waiting to be written, and embeds the query only when the session is too long to recall
whole; then the session's embedded turns are searched in process (``index.py``: read once, kept current by
the writer), or in the store when it is shared with other processes. Writes go through a bounded queue to a
background writer. A failing store never fails a chat request:
recall returns nothing, the failure is counted, and ``status()`` says ``degraded`` until the store answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ailb.contract import SessionId
from ailb.embeddings.base import Embedder, EmbeddingError
from ailb.memory.cache import Key, SessionCache
from ailb.memory.index import IndexCache
from ailb.memory.models import (
    EMPTY_RECALL,
    MemoryObserver,
    Recall,
    SessionView,
    StoredTurn,
    Turn,
    check_session_id,
)
from ailb.memory.recall import ClientHistory, render, select, whole_history
from ailb.memory.store import MemoryStoreError, TurnStore
from ailb.memory.writer import TurnWriter
from ailb.settings import MemoryConfig, Settings

__all__ = ["MemoryObserver", "MemoryService", "Recall", "Turn", "check_session_id"]

log = logging.getLogger("ailb.memory")

CACHED_SESSIONS = 1024
COMPLETE_VIEW_FACTOR = 4  # a session view holds every turn while they total at most 4x the recall budget
MAX_SIMILAR_CANDIDATES = 100
RECALL_TIMEOUT = 2.0  # a chat request waits at most this long for the store, and as long for the model
WRITE_LINGER = 0.2  # the writer gathers turns this long before a write
WRITE_RETRIES = (1.0, 2.0)  # pauses before a failed write is tried again
PROBE_SECONDS = 1.0  # how often the maintenance task looks: a failing store is asked whether it is back


class MemoryService:
    def __init__(
        self,
        config: MemoryConfig,
        store: TurnStore,
        embedder: Embedder,
        *,
        observer: MemoryObserver | None = None,
        cached_sessions: int = CACHED_SESSIONS,
        recall_timeout: float = RECALL_TIMEOUT,
        write_linger: float = WRITE_LINGER,
        write_retries: Sequence[float] = WRITE_RETRIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.recall_timeout = recall_timeout
        self.store = store
        self.embedder = embedder
        self._observer = observer
        self._clock = clock
        self._cache = SessionCache(cached_sessions, config.recent_turns, COMPLETE_VIEW_FACTOR * config.max_tokens)
        self._indexes = IndexCache(cached_sessions)
        self._pending: dict[Key, dict[str, StoredTurn]] = {}
        self._writer = TurnWriter(
            store,
            embedder,
            self._cache,
            budget=config.max_tokens,
            capacity=config.queue_size,
            is_live=self._is_pending,
            on_stored=self._written,
            on_failed=self._write_failed,
            on_dropped=self._write_dropped,
            linger=write_linger,
            retry_delays=write_retries,
            exclusive_store=cached_sessions > 0,  # from_settings caches nothing when replicas share the store
        )
        self._store_ok = True
        self._embeddings_ok = True
        self._started = False
        self._closed = False
        self._maintenance: asyncio.Task[None] | None = None
        self.failures: Counter[str] = Counter()
        self.stored_turns = 0
        self.dropped_turns = 0
        self.expired_turns = 0

    @classmethod
    def from_settings(
        cls, settings: Settings, embedder: Embedder, *, metrics: MemoryObserver | None = None
    ) -> MemoryService:
        """Embedded ChromaDB in ``MEMORY_PATH``, or the server at ``CHROMA_HOST`` (shared by replicas: no cache)."""
        from ailb.memory.chroma_store import ChromaTurnStore, collection_name

        shared = bool(settings.chroma_host)
        store = ChromaTurnStore(
            collection_name(embedder.name),
            path=settings.memory.path,
            host=settings.chroma_host,
            port=settings.chroma_port,
        )
        return cls(settings.memory, store, embedder, observer=metrics, cached_sessions=0 if shared else CACHED_SESSIONS)

    async def start(self) -> None:
        """Open the store (``ConfigError`` for an unusable ``MEMORY_PATH``), start loading the model and the writer."""
        if self._started:
            return
        try:
            await self.store.open()
        except MemoryStoreError as exc:
            log.error("memory: %s; chat continues without memory until it answers", exc)
            self._store_ok = False
        self._started = True
        await self.embedder.start()
        self._writer.start()
        self._maintenance = asyncio.create_task(self._maintain(), name="ailb-memory-maintenance")

    async def recall(self, tenant: str, session_id: str, messages: Sequence[dict[str, Any]]) -> Recall:
        check_session_id(session_id)
        started = time.perf_counter()
        key = (tenant, session_id)
        pending = list(self._pending.get(key, {}).values())
        view = await self._view(key)
        history, stored_count = self._history(view, pending)
        sent = ClientHistory.of(messages)
        chosen = whole_history(history, self.config.max_tokens, sent) if view is None or view.complete else None
        if chosen is None:
            similar = await self._similar(key, history, sent, stored_count) if view is not None else []
            chosen = select(history, similar, self.config, sent)
        if self._observer is not None:
            self._observer.memory_recalled(time.perf_counter() - started)
        return Recall(render(chosen), len(chosen)) if chosen else EMPTY_RECALL

    def remember(self, turn: Turn) -> None:
        """Queue ``turn`` for storing; never waits. A full queue drops it (counted)."""
        if self._closed or not SessionId.is_valid(turn.session_id):
            return
        stored = StoredTurn.of(turn)
        if not self._writer.submit(stored):
            self.dropped_turns += 1
            if self._observer is not None:
                self._observer.memory_dropped_turn()
            return
        self._pending.setdefault(stored.key, {})[stored.id] = stored

    async def flush(self) -> None:
        """Wait until every turn remembered so far is written (or has failed)."""
        await self._writer.flush()

    async def list_turns(self, tenant: str, session_id: str) -> list[dict[str, Any]]:
        """The session's turns, oldest first (including those not written yet)."""
        check_session_id(session_id)
        try:
            stored = await self.store.list_turns(tenant, session_id)
        except MemoryStoreError as exc:
            self._failed("list", exc)
            raise
        self._store_ok = True
        turns, _ = self._history(
            SessionView(len(stored), 0, stored, True), self._pending.get((tenant, session_id), {}).values()
        )
        return [t.public() for t in turns]

    async def delete_session(self, tenant: str, session_id: str) -> int:
        """Erase the session's turns (queued ones too); they are gone from recall at once. Returns how many."""
        check_session_id(session_id)
        key = (tenant, session_id)
        cancelled = set(self._pending.pop(key, {}))
        self._forget_session(key)
        try:
            deleted = await self._writer.erase(tenant, session_id)
        except MemoryStoreError as exc:
            self._failed("delete", exc)
            raise
        finally:
            self._forget_session(key)
        self._store_ok = True
        return len(cancelled.union(deleted))

    async def prune(self) -> int:
        """Erase turns older than ``MEMORY_TTL_DAYS`` (nothing when it is not set). Returns how many."""
        if self.config.ttl_days is None:
            return 0
        try:
            removed = await self._writer.expire(self._cutoff())
        except MemoryStoreError as exc:
            self._failed("expire", exc)
            return 0
        self._store_ok = True
        self.expired_turns += removed
        if removed:
            self._cache.clear()
            self._indexes.clear()
            log.info("memory: %d turns older than %s days expired", removed, self.config.ttl_days)
        return removed

    def status(self) -> str:
        """``ok``, ``loading`` (the embedding model is loading) or ``degraded`` (store or embeddings failing)."""
        if not (self._store_ok and self._embeddings_ok) or self.embedder.status() == "failed":
            return "degraded"
        return "ok" if self.embedder.ready else "loading"

    def stats(self) -> dict[str, Any]:
        return {
            "status": self.status(),
            "store": self.store.description,
            "embedder": self.embedder.name,
            "queued": self._writer.depth,
            "cached_sessions": len(self._cache),
            "indexed_sessions": len(self._indexes),
            "stored_turns": self.stored_turns,
            "embedded_turns": self._writer.embedded_turns,
            "dropped_turns": self.dropped_turns,
            "expired_turns": self.expired_turns,
            "failures": dict(self.failures),
        }

    async def aclose(self, flush_seconds: float = 30.0) -> None:
        """Write every queued turn (waiting up to ``flush_seconds``), then close the store."""
        self._closed = True
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        await self._writer.close(flush_seconds)
        await self.store.aclose()

    # --- recall helpers
    async def _view(self, key: Key) -> SessionView | None:
        """The session's cached view, else loaded from the store; None when the store fails or is failing
        (then requests do not wait for it: the maintenance task finds out when it is back)."""
        view = self._cache.get(key)
        if view is not None or not self._store_ok:
            return view
        token = self._cache.begin_load(key)
        try:
            loading = self.store.load_view(key[0], key[1], self.config.recent_turns, self._cache.complete_limit)
            view = await asyncio.wait_for(loading, self.recall_timeout)
            self._store_ok = True
        except (MemoryStoreError, TimeoutError) as exc:
            self._failed("recall", exc)
        finally:
            self._cache.finish_load(key, token, view)
        return view

    def _history(self, view: SessionView | None, pending: Iterable[StoredTurn]) -> tuple[list[StoredTurn], int]:
        """Known turns (stored and queued) oldest first, within the retention period; and the session's size."""
        by_id = {t.id: t for t in view.turns} if view is not None else {}
        count = view.count if view is not None else 0
        for stored in pending:
            if stored.id not in by_id:
                by_id[stored.id] = stored
                count += 1
        turns = sorted(by_id.values(), key=lambda t: t.turn.timestamp)
        if self.config.ttl_days is not None:
            cutoff = self._cutoff()
            turns = [t for t in turns if t.turn.timestamp >= cutoff]
        return turns, count

    async def _similar(
        self, key: Key, history: list[StoredTurn], sent: ClientHistory, stored_count: int
    ) -> list[tuple[StoredTurn, float]]:
        """Older turns like the user's new message, when there are older turns and the model is loaded."""
        config = self.config
        recent = history[-config.recent_turns :] if config.recent_turns else []
        if not config.top_k or not sent.query or stored_count <= len(recent):
            return []
        if not (self.embedder.ready and self._store_ok):
            return []
        if sent.sent_everything(recent, stored_count):
            return []
        limit = min(MAX_SIMILAR_CANDIDATES, config.top_k + sent.exchanges + len(recent))
        try:
            querying = self.embedder.embed_query(sent.query, config.query_tokens)
            vector = await asyncio.wait_for(querying, self.recall_timeout)
            self._embeddings_ok = True
        except TimeoutError as exc:  # the model is saturated, not broken: this request goes without similar turns
            self._failed("recall", exc, degrade=False)
            return []
        except EmbeddingError as exc:
            self._failed("recall", exc)
            return []
        try:
            found = await self._search(key, vector, limit)
        except (MemoryStoreError, TimeoutError) as exc:
            self._failed("recall", exc)
            return []
        self._store_ok = True
        if config.ttl_days is not None:
            cutoff = self._cutoff()
            found = [pair for pair in found if pair[0].turn.timestamp >= cutoff]
        return found

    async def _search(self, key: Key, vector: list[float], limit: int) -> list[tuple[StoredTurn, float]]:
        """The session's ``limit`` turns most like ``vector``: in process once its index is loaded."""
        if self._indexes.capacity <= 0:  # a shared store: another process may have written since
            return await asyncio.wait_for(self.store.similar(key[0], key[1], vector, limit), self.recall_timeout)
        return await self._indexes.similar(
            key, vector, limit, lambda: asyncio.wait_for(self.store.embedded_turns(*key), self.recall_timeout)
        )

    # --- writer callbacks and upkeep
    def _is_pending(self, stored: StoredTurn) -> bool:
        return stored.id in self._pending.get(stored.key, {})

    def _written(self, turns: list[StoredTurn], embedded: list[tuple[StoredTurn, list[float]]], seconds: float) -> None:
        self._store_ok = self._embeddings_ok = True
        self.stored_turns += len(turns)
        for stored in turns:
            self._cache.add(stored)
            self._forget_pending(stored)
        for stored, vector in embedded:
            self._indexes.add(stored, vector)
        if self._observer is not None:
            self._observer.memory_stored(seconds)

    def _write_failed(self, exc: Exception) -> None:
        self._failed("store", exc)

    def _write_dropped(self, turns: list[StoredTurn]) -> None:
        for stored in turns:
            self._forget_pending(stored)

    def _forget_session(self, key: Key) -> None:
        self._cache.invalidate(key)
        self._indexes.invalidate(key)

    def _forget_pending(self, stored: StoredTurn) -> None:
        queued = self._pending.get(stored.key)
        if queued is not None:
            queued.pop(stored.id, None)
            if not queued:
                del self._pending[stored.key]

    def _failed(self, operation: str, exc: Exception, *, degrade: bool = True) -> None:
        if degrade and isinstance(exc, EmbeddingError):
            self._embeddings_ok = False
        elif degrade:
            self._store_ok = False
        self.failures[operation] += 1
        reason = str(exc) or ("no answer in time" if isinstance(exc, TimeoutError) else type(exc).__name__)
        log.warning("memory: %s failed: %s", operation, reason)
        if self._observer is not None:
            self._observer.memory_failed(operation)

    def _cutoff(self) -> float:
        return self._clock() - (self.config.ttl_days or 0.0) * 86400.0

    async def _maintain(self) -> None:
        """Probe a failing store until it answers again; expire old turns when a retention period is set."""
        ttl_seconds = (self.config.ttl_days or 0.0) * 86400.0
        prune_every = min(3600.0, max(60.0, ttl_seconds / 10))
        next_prune = time.monotonic()
        while True:
            if not self._store_ok:
                with contextlib.suppress(MemoryStoreError):
                    await self.store.ping()
                    self._store_ok = True
                    log.info("memory: %s answers again", self.store.description)
            if ttl_seconds and self._store_ok and time.monotonic() >= next_prune:
                await self.prune()
                next_prune = time.monotonic() + prune_every
            await asyncio.sleep(PROBE_SECONDS)
