"""The ``LimitStore`` on Redis: buckets and ledgers shared by every AILB process on one server.

Each call is one server-side script (``state/redis_scripts.py``), so it is atomic for the fleet, as one call
of the in-process store is for a process. Bucket time is Redis's own clock (``TIME``), the same for every
instance whatever their clocks say; tests may pass a ``clock`` instead. Every method raises
``SharedStateUnavailable`` when Redis cannot be reached (``FleetLimitStore`` falls back then).

Cancellation: the script is sent in a task of its own and awaited through a shield, so a cancelled caller
never leaves a script half-sent; when a grant lands after its caller was cancelled, it is undone.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ailb.state.base import Draw, Ledger, Refusal, Reservation, Settlement, SharedStateUnavailable
from ailb.state.redis_link import RedisLink

log = logging.getLogger("ailb.state")
KEY_PREFIX = "ailb:"
GRANTED, LEDGER_REFUSED = 0, 1


@dataclass(frozen=True, slots=True)
class Outcome:
    """What ``acquire`` answered, and the ledger's spent + reserved it saw (``None`` without a ledger)."""

    refusal: Refusal | None
    ledger_total: float | None


class RedisLimitStore:
    def __init__(self, link: RedisLink, *, clock: Callable[[], float] | None = None) -> None:
        self.link = link
        self._clock = clock
        self._undoing: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """The link is started by its owner (``state.fleet``); nothing of this store's own to open."""

    async def aclose(self) -> None:
        while self._undoing:
            await asyncio.gather(*list(self._undoing), return_exceptions=True)

    # --- LimitStore ------------------------------------------------------------------------------------------
    async def acquire(self, draws: Sequence[Draw], reservation: Reservation | None = None) -> Refusal | None:
        return (await self.take(draws, reservation)).refusal

    async def take(self, draws: Sequence[Draw], reservation: Reservation | None = None) -> Outcome:
        """``acquire``, also telling the ledger's level the script saw."""
        keys, args = self._draw_args(draws)
        if reservation is not None:
            keys.append(ledger_key(reservation.ledger))
            limit = "" if reservation.limit_usd is None else repr(reservation.limit_usd)
            args += [repr(reservation.amount_usd), limit, repr(reservation.expires_at)]
        task = asyncio.ensure_future(self.link.script("acquire", "acquire", keys, args))
        try:
            reply = await asyncio.shield(task)
        except asyncio.CancelledError:
            undo = asyncio.ensure_future(self._undo_when_landed(task, draws, reservation))
            self._undoing.add(undo)
            undo.add_done_callback(self._undoing.discard)
            raise
        return _outcome(reply, draws, reservation)

    async def settle(self, draws: Sequence[Draw], settlement: Settlement | None = None) -> None:
        await self.adjust(draws, settlement)

    async def adjust(self, draws: Sequence[Draw], settlement: Settlement | None, requests: int = 0) -> float | None:
        """``settle``, also adding ``requests`` to the ledger's count; returns its spent + reserved."""
        keys, args = self._draw_args(draws)
        if settlement is not None:
            keys.append(ledger_key(settlement.ledger))
            args += [
                repr(settlement.reserved_usd),
                repr(settlement.spent_usd),
                settlement.prompt_tokens,
                settlement.completion_tokens,
                repr(settlement.expires_at),
                requests,
            ]
        reply = await self.link.script("settle", "settle", keys, args)
        return float(reply) if reply else None

    async def ledger(self, name: str) -> Ledger:
        async def read(client: Any) -> list[str | None]:
            fields = ("spent", "reserved", "requests", "prompt", "completion")
            values: list[str | None] = await client.hmget(ledger_key(name), fields)
            return values

        spent, reserved, requests, prompt, completion = await self.link.call("ledger", read)
        return Ledger(
            float(spent or 0), float(reserved or 0), int(requests or 0), int(prompt or 0), int(completion or 0)
        )

    # --- internals -------------------------------------------------------------------------------------------
    def _draw_args(self, draws: Sequence[Draw]) -> tuple[list[str], list[Any]]:
        now = "" if self._clock is None else repr(self._clock())
        keys = [bucket_key(d.bucket) for d in draws]
        args: list[Any] = [now, len(draws)]
        for d in draws:
            args += [repr(float(d.capacity)), repr(float(d.per_second)), repr(float(d.amount))]
        return keys, args

    async def _undo_when_landed(
        self, sent: asyncio.Future[Any], draws: Sequence[Draw], res: Reservation | None
    ) -> None:
        """The caller of this script was cancelled: once it has run, give back whatever it granted."""
        try:
            reply = await sent
        except SharedStateUnavailable:
            return  # it may or may not have run; nothing can be known (see the README on Redis failures)
        if _outcome(reply, draws, res).refusal is not None:
            return
        back = [Draw(d.bucket, d.capacity, d.per_second, -d.amount) for d in draws]
        settlement = None if res is None else Settlement(res.ledger, res.amount_usd, 0.0, 0, 0, res.expires_at)
        try:
            await self.adjust(back, settlement, requests=-1 if res is not None else 0)
        except SharedStateUnavailable:
            log.warning("shared state: could not give back a grant whose request was cancelled")


def bucket_key(name: str) -> str:
    return f"{KEY_PREFIX}b:{name}"


def ledger_key(name: str) -> str:
    return f"{KEY_PREFIX}l:{name}"


def _outcome(reply: list[Any], draws: Sequence[Draw], reservation: Reservation | None) -> Outcome:
    code, index, wait, known = int(reply[0]), int(reply[1]), str(reply[2]), str(reply[3])
    total = float(known) if known else None
    if code == GRANTED:
        return Outcome(None, total)
    if code == LEDGER_REFUSED and reservation is not None:
        return Outcome(Refusal(reservation.ledger, 0.0), total)
    retry_after = math.inf if wait == "inf" else float(wait)
    return Outcome(Refusal(draws[index - 1].bucket, retry_after), total)
