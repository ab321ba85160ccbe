"""The in-process ``LimitStore``: buckets and ledgers in dicts, each call atomic because it never awaits.

Ledgers can be kept across restarts by a ``SpendJournal`` (SQLite): changed ledgers are written in batches,
off the event loop, every ``flush_interval`` seconds and at close. Buckets are not persisted: a restarted
process starts with full buckets (at most one extra burst per key).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ailb.state.base import Draw, Ledger, Refusal, Reservation, Settlement
from ailb.state.journal import LedgerRow, SpendJournal

log = logging.getLogger("ailb.state")
TOLERANCE_USD = 1e-9  # float sums of prices must not refuse a reservation that fits exactly


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


@dataclass(slots=True)
class _Ledger:
    expires_at: float
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class InProcessLimitStore:
    def __init__(
        self,
        *,
        journal: SpendJournal | None = None,
        flush_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._ledgers: dict[str, _Ledger] = {}
        self._dirty: set[str] = set()
        self._journal = journal
        self._flush_interval = flush_interval
        self._clock = clock
        self._wall_clock = wall_clock
        self._flusher: asyncio.Task[None] | None = None

    @property
    def persistent(self) -> bool:
        return self._journal is not None

    # --- lifecycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._journal is not None and self._flusher is None:
            await self._load(self._journal)

    async def persist_to(self, journal: SpendJournal) -> None:
        """Start keeping ledgers in ``journal`` (at start-up, or when a reload first meters a key)."""
        if self._journal is None:
            self._journal = journal
            await self._load(journal)

    async def _load(self, journal: SpendJournal) -> None:
        rows = await asyncio.to_thread(journal.open, self._wall_clock())
        for row in rows:
            ledger = self._ledgers.setdefault(row.name, _Ledger(row.expires_at))
            ledger.spent_usd += row.spent_usd
            ledger.requests += row.requests
            ledger.prompt_tokens += row.prompt_tokens
            ledger.completion_tokens += row.completion_tokens
        self._flusher = asyncio.create_task(self._flush_every(journal))

    async def aclose(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        if self._journal is not None:
            journal, self._journal = self._journal, None
            await self._flush(journal)
            await asyncio.to_thread(journal.close)

    # --- LimitStore ------------------------------------------------------------------------------------------
    async def acquire(self, draws: Sequence[Draw], reservation: Reservation | None = None) -> Refusal | None:
        ledger = None
        if reservation is not None:
            ledger = self._ledger(reservation.ledger, reservation.expires_at)
            limit = reservation.limit_usd
            if limit is not None and ledger.spent_usd + ledger.reserved_usd + reservation.amount_usd > (
                limit + TOLERANCE_USD
            ):
                return Refusal(reservation.ledger, 0.0)
        now = self._clock()
        buckets = [self._refilled(draw, now) for draw in draws]
        refusal: Refusal | None = None
        for draw, bucket in zip(draws, buckets, strict=True):
            if bucket.tokens < draw.amount:
                wait = math.inf if draw.amount > draw.capacity else (draw.amount - bucket.tokens) / draw.per_second
                if refusal is None or wait > refusal.retry_after:
                    refusal = Refusal(draw.bucket, wait)
        if refusal is not None:
            return refusal
        for draw, bucket in zip(draws, buckets, strict=True):
            bucket.tokens -= draw.amount
        if ledger is not None and reservation is not None:
            ledger.reserved_usd += reservation.amount_usd
            ledger.requests += 1
            self._dirty.add(reservation.ledger)
        return None

    async def settle(self, draws: Sequence[Draw], settlement: Settlement | None = None) -> None:
        now = self._clock()
        for draw in draws:
            bucket = self._refilled(draw, now)
            bucket.tokens = min(draw.capacity, bucket.tokens - draw.amount)
        if settlement is not None:
            ledger = self._ledger(settlement.ledger, settlement.expires_at)
            ledger.reserved_usd = max(0.0, ledger.reserved_usd - settlement.reserved_usd)
            ledger.spent_usd += settlement.spent_usd
            ledger.prompt_tokens += settlement.prompt_tokens
            ledger.completion_tokens += settlement.completion_tokens
            self._dirty.add(settlement.ledger)

    async def ledger(self, name: str) -> Ledger:
        found = self._ledgers.get(name)
        if found is None:
            return Ledger()
        return Ledger(found.spent_usd, found.reserved_usd, found.requests, found.prompt_tokens, found.completion_tokens)

    # --- internals -------------------------------------------------------------------------------------------
    def _refilled(self, draw: Draw, now: float) -> _Bucket:
        bucket = self._buckets.get(draw.bucket)
        if bucket is None:
            bucket = self._buckets[draw.bucket] = _Bucket(draw.capacity, now)
            return bucket
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(draw.capacity, bucket.tokens + elapsed * draw.per_second)
        bucket.updated = now
        return bucket

    def _ledger(self, name: str, expires_at: float) -> _Ledger:
        ledger = self._ledgers.get(name)
        if ledger is None:
            self._drop_expired()
            ledger = self._ledgers[name] = _Ledger(expires_at)
        return ledger

    def _drop_expired(self) -> None:
        """A new ledger means a new period began somewhere: forget ledgers of periods over and settled."""
        now = self._wall_clock()
        for name in [n for n, led in self._ledgers.items() if led.expires_at < now and led.reserved_usd <= 0]:
            del self._ledgers[name]

    def _changed_rows(self) -> list[LedgerRow]:
        rows = []
        for name in self._dirty:
            led = self._ledgers.get(name)
            if led is not None:
                rows.append(
                    LedgerRow(
                        name, led.spent_usd, led.requests, led.prompt_tokens, led.completion_tokens, led.expires_at
                    )
                )
        self._dirty.clear()
        return rows

    async def _flush(self, journal: SpendJournal) -> None:
        rows = self._changed_rows()  # taken on the event loop: the thread only sees this snapshot
        if not rows:
            return
        try:
            await asyncio.to_thread(journal.write, rows, self._wall_clock())
        except BaseException:
            self._dirty.update(row.name for row in rows)
            raise

    async def _flush_every(self, journal: SpendJournal) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            try:
                await self._flush(journal)
            except Exception as exc:  # a full disk must not stop the gateway; the next flush retries
                log.error("could not persist per-key spend to %s: %s", journal.path, exc)
