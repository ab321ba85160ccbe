"""The fleet's ``LimitStore``: Redis while it answers, per-instance limits while it does not, and back in step
when it returns.

**While Redis answers** every call is the Redis store's (``state/redis_limits.py``): limits hold for the fleet.

**While it is down** requests are still served: calls go to an in-process store at once (the link does not
wait on a dead server) with each limit divided by ``divisor`` — the instances expected to share the load
(``EXPECTED_INSTANCES`` × workers), so the fleet as a whole stays near its limits:

- a bucket gets ``capacity / divisor`` tokens refilled at ``per_second / divisor`` (never less than the one
  request being asked, so a request that fits the fleet's limit can still pass here);
- a budget gets ``(limit − what the fleet had spent and reserved when this instance last heard from Redis)
  / divisor``; an instance that never saw the ledger counts from zero.

Everything counted meanwhile — requests, spend, tokens, reservations still in flight, and the settlement of
reservations Redis holds — is owed to Redis. **When it returns**, the owed sums are merged into its ledgers
(one ``settle`` script per ledger, under a lock that holds settlements and the fallback's admissions back for
those few milliseconds), reservations still in flight move to Redis, and the per-instance buckets are
dropped. Buckets are not merged: what an instance drew during the outage is not taken from the fleet's.

Reservations are settled in the store that holds them: each grant is remembered by ledger and amount
(``Settlement.reserved_usd`` equals the reservation it settles), so a request reserved in Redis and finished
during an outage releases its reservation in Redis once it is back, and the other way round.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ailb.state.base import Draw, Ledger, Refusal, Reservation, Settlement, SharedStateUnavailable
from ailb.state.memory import InProcessLimitStore
from ailb.state.redis_limits import Outcome, RedisLimitStore


@dataclass(slots=True)
class _Owed:
    """What this instance counted for a ledger while Redis was down."""

    expires_at: float
    spent_usd: float = 0.0
    released_usd: float = 0.0  # reservations held in Redis, settled meanwhile
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class FleetLimitStore:
    def __init__(
        self, redis: RedisLimitStore, divisor: int, *, local: Callable[[], InProcessLimitStore] = InProcessLimitStore
    ) -> None:
        self.redis = redis
        self.divisor = max(1, divisor)
        self._new_local = local
        self._local = local()
        self._synced = False  # Redis is up and holds everything this instance counted
        self._lock = asyncio.Lock()
        self._in_redis: dict[str, Counter[float]] = {}  # reservations held in Redis, by ledger and amount
        self._in_local: dict[str, Counter[float]] = {}  # reservations held in the fallback
        self._owed: dict[str, _Owed] = {}
        self._known: dict[str, tuple[float, float]] = {}  # the fleet's spent + reserved per ledger, and its expiry
        self._last_read: dict[str, Ledger] = {}
        redis.link.on_up(self._resync)
        redis.link.on_down(self._unsynced)

    @property
    def shared(self) -> bool:
        """Whether limits hold for the fleet now (Redis answers), not per instance."""
        return self._synced and self.redis.link.up

    async def start(self) -> None:
        await self.redis.start()

    async def aclose(self) -> None:
        await self.redis.aclose()
        await self._local.aclose()

    # --- LimitStore ------------------------------------------------------------------------------------------
    async def acquire(self, draws: Sequence[Draw], reservation: Reservation | None = None) -> Refusal | None:
        if self._synced:
            try:
                return self._granted_in_redis(await self.redis.take(draws, reservation), reservation)
            except SharedStateUnavailable:
                pass
        async with self._lock:
            if self._synced:  # Redis came back while this call waited for the lock
                try:
                    return self._granted_in_redis(await self.redis.take(draws, reservation), reservation)
                except SharedStateUnavailable:
                    pass
            return await self._acquire_here(draws, reservation)

    async def settle(self, draws: Sequence[Draw], settlement: Settlement | None = None) -> None:
        if self._synced and await self._settled_in_redis(draws, settlement):
            return
        async with self._lock:
            if self._synced and await self._settled_in_redis(draws, settlement):
                return
            held_in_redis = settlement is not None and _take(self._in_redis, settlement)
            if settlement is not None and not held_in_redis:
                held_here = _take(self._in_local, settlement)
                await self._local.settle([], settlement if held_here else replace(settlement, reserved_usd=0.0))
            await self._local.settle([self._divided(d) for d in draws])
            if settlement is not None:
                self._owe(settlement, held_in_redis)

    async def ledger(self, name: str) -> Ledger:
        if self._synced:
            try:
                found = self._last_read[name] = await self.redis.ledger(name)
                return found
            except SharedStateUnavailable:
                pass
        seen, local = self._last_read.get(name, Ledger()), await self._local.ledger(name)
        owed = self._owed.get(name) or _Owed(0.0)
        return Ledger(
            seen.spent_usd + owed.spent_usd,
            max(0.0, seen.reserved_usd - owed.released_usd) + local.reserved_usd,
            seen.requests + owed.requests,
            seen.prompt_tokens + owed.prompt_tokens,
            seen.completion_tokens + owed.completion_tokens,
        )

    # --- Redis up --------------------------------------------------------------------------------------------
    def _granted_in_redis(self, outcome: Outcome, reservation: Reservation | None) -> Refusal | None:
        if reservation is not None:
            if outcome.ledger_total is not None:
                self._remember(reservation.ledger, outcome.ledger_total, reservation.expires_at)
            if outcome.refusal is None:
                self._in_redis.setdefault(reservation.ledger, Counter())[reservation.amount_usd] += 1
        return outcome.refusal

    async def _settled_in_redis(self, draws: Sequence[Draw], settlement: Settlement | None) -> bool:
        """Settle in Redis; ``False`` (and nothing changed) when it cannot be reached."""
        held = settlement is not None and _take(self._in_redis, settlement)
        sent = settlement
        if settlement is not None and not held:  # reserved in the fallback, released there: only the spend
            sent = replace(settlement, reserved_usd=0.0)
        try:
            total = await self.redis.adjust(draws, sent)
        except SharedStateUnavailable:
            if held and settlement is not None:
                self._in_redis.setdefault(settlement.ledger, Counter())[settlement.reserved_usd] += 1
            return False
        if settlement is not None and total is not None:
            self._remember(settlement.ledger, total, settlement.expires_at)
        return True

    def _remember(self, ledger: str, total: float, expires_at: float) -> None:
        """Keep the fleet's spent + reserved of ``ledger``; a new ledger (a period began) drops those over."""
        if ledger not in self._known:
            now = time.time()
            for name in [n for n, (_, until) in self._known.items() if until < now]:
                del self._known[name]
                self._last_read.pop(name, None)
        self._known[ledger] = (total, expires_at)

    # --- Redis down ------------------------------------------------------------------------------------------
    async def _acquire_here(self, draws: Sequence[Draw], reservation: Reservation | None) -> Refusal | None:
        local = None
        if reservation is not None:
            limit = reservation.limit_usd
            if limit is not None:
                known = self._known.get(reservation.ledger, (0.0, 0.0))[0]
                limit = max(0.0, limit - known) / self.divisor
            local = Reservation(reservation.ledger, reservation.amount_usd, limit, reservation.expires_at)
        refusal = await self._local.acquire([self._divided(d) for d in draws], local)
        if refusal is None and reservation is not None:
            self._in_local.setdefault(reservation.ledger, Counter())[reservation.amount_usd] += 1
            self._owed_for(reservation.ledger, reservation.expires_at).requests += 1
        return refusal

    def _divided(self, draw: Draw) -> Draw:
        capacity = max(draw.capacity / self.divisor, min(draw.amount, draw.capacity))
        return Draw(draw.bucket, capacity, draw.per_second / self.divisor, draw.amount)

    def _owe(self, settlement: Settlement, held_in_redis: bool) -> None:
        owed = self._owed_for(settlement.ledger, settlement.expires_at)
        owed.spent_usd += settlement.spent_usd
        owed.prompt_tokens += settlement.prompt_tokens
        owed.completion_tokens += settlement.completion_tokens
        if held_in_redis:
            owed.released_usd += settlement.reserved_usd

    def _owed_for(self, ledger: str, expires_at: float) -> _Owed:
        owed = self._owed.get(ledger)
        if owed is None:
            owed = self._owed[ledger] = _Owed(expires_at)
        return owed

    def _unsynced(self) -> None:
        self._synced = False

    async def _resync(self) -> None:
        """Redis is back: merge what was counted here, move reservations in flight to it, drop the fallback."""
        async with self._lock:
            for name, owed in list(self._owed.items()):  # a ledger with a reservation in flight here owes a request
                in_flight = sum(amount * count for amount, count in self._in_local.get(name, Counter()).items())
                merge = Settlement(name, owed.released_usd - in_flight, owed.spent_usd, owed.prompt_tokens,
                                   owed.completion_tokens, owed.expires_at)  # fmt: skip
                self._remember(name, await self.redis.adjust([], merge, requests=owed.requests) or 0.0, owed.expires_at)
                del self._owed[name]
                moved = self._in_local.pop(name, None)
                if moved:
                    self._in_redis.setdefault(name, Counter()).update(moved)
            await self._local.aclose()
            self._local = self._new_local()
            self._synced = True


def _take(held: dict[str, Counter[float]], settlement: Settlement) -> bool:
    """Remove one grant of ``settlement.reserved_usd`` on its ledger from ``held``, if there is one."""
    amounts = held.get(settlement.ledger)
    amount = settlement.reserved_usd
    if not amounts or amounts[amount] <= 0:
        return False
    amounts[amount] -= 1
    if amounts[amount] <= 0:
        del amounts[amount]
    if not amounts:
        del held[settlement.ledger]
    return True
