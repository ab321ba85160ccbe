"""The ``LimitStore`` seam: token buckets and spend ledgers, changed atomically.

Everything that must hold across requests — request and token rates, spend budgets, the gRPC route limits —
goes through this one protocol, so that where the state lives (this process, or Redis for a fleet) is one
choice made at start-up and invisible to callers. The shape is chosen for a store behind a network:

- async methods; each call is one atomic step (one server-side script for Redis), all-or-nothing;
- buckets and ledgers are named by plain strings, and every argument and result is a small frozen record of
  numbers and strings, so nothing but values crosses the seam;
- limits travel with each call (capacity, refill rate, budget), so a reload changes them for the next
  request without touching stored state; the store keeps only levels and sums;
- bucket time is the store's own clock (Redis ``TIME`` for a fleet); ledger names carry their budget period,
  computed by the caller, and ``expires_at`` tells the store when a ledger may be dropped.

Buckets: a bucket holds up to ``capacity`` tokens and refills at ``per_second``; a new bucket starts full.
``acquire`` takes ``amount`` from each bucket only if every bucket holds it (and the reservation fits), else
nothing. ``settle`` adjusts buckets unconditionally: a positive amount takes more (a bucket may go below zero,
delaying later requests until it refills), a negative one gives back (never above capacity).

Ledgers: per key and period, ``spent_usd`` (settled), ``reserved_usd`` (held by requests in flight),
``requests`` and tokens. A reservation fits when ``spent + reserved + amount <= limit``; settling releases
the reservation and adds what was really spent.

Cancellation: cancelling ``acquire`` must leave the store as if it had not been called. An implementation
that awaits I/O shields the call and undoes a grant that lands after the cancellation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class SharedStateUnavailable(Exception):
    """The shared store (Redis) cannot be reached now; callers fall back to what they hold in process."""


@dataclass(frozen=True, slots=True)
class Draw:
    """Take ``amount`` tokens from ``bucket`` (capacity and refill rate as configured now)."""

    bucket: str
    capacity: float
    per_second: float
    amount: float


@dataclass(frozen=True, slots=True)
class Reservation:
    """Hold ``amount_usd`` of ``ledger``'s budget (``limit_usd`` ``None``: no budget, only counted)."""

    ledger: str
    amount_usd: float
    limit_usd: float | None
    expires_at: float  # Unix time after which the ledger (its period over) may be dropped


@dataclass(frozen=True, slots=True)
class Settlement:
    """Release ``reserved_usd`` of ``ledger`` and record what the request really cost and used."""

    ledger: str
    reserved_usd: float
    spent_usd: float
    prompt_tokens: int
    completion_tokens: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why ``acquire`` took nothing: the bucket or ledger named ``key`` could not give what was asked.

    ``retry_after``: seconds until that bucket would hold the amount (``inf`` when the amount is larger than
    its capacity); 0 for a ledger (its period's end is the caller's knowledge).
    """

    key: str
    retry_after: float


@dataclass(frozen=True, slots=True)
class Ledger:
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class LimitStore(Protocol):
    async def start(self) -> None:
        """Open what the store needs (connections, the persisted ledgers)."""

    async def acquire(self, draws: Sequence[Draw], reservation: Reservation | None = None) -> Refusal | None:
        """Take every draw and make the reservation (counting one request on its ledger), or nothing at all.
        The draws name distinct buckets.

        ``None`` when granted. Ledgers are checked before buckets, so an exhausted budget is what a refusal
        names even when a rate is also exceeded.
        """

    async def settle(self, draws: Sequence[Draw], settlement: Settlement | None = None) -> None:
        """Adjust buckets by ``draws`` (unconditionally) and settle a reservation."""

    async def ledger(self, name: str) -> Ledger:
        """The ledger's sums now (zeros for a ledger never used)."""

    async def aclose(self) -> None:
        """Persist what must survive and release resources."""
