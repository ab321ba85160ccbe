"""The LimitStore contract — buckets, ledgers, atomicity — for every implementation (``make_store``: in process,
Redis, the fleet store), and the in-process store's own ledger expiry and SQLite spend journal."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from ailb.state import Draw, InProcessLimitStore, JournalError, Ledger, Refusal, Reservation, Settlement, SpendJournal
from tests.unit.state.conftest import MakeStore

FAR = 4_000_000_000.0  # a ledger expiry far in the future


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def draw(bucket: str = "b", capacity: float = 3, per_second: float = 1, amount: float = 1) -> Draw:
    return Draw(bucket, capacity, per_second, amount)


def reserve(amount: float, limit: float | None = 1.0, ledger: str = "l") -> Reservation:
    return Reservation(ledger, amount, limit, FAR)


def settle(reserved: float, spent: float, prompt: int = 0, completion: int = 0, ledger: str = "l") -> Settlement:
    return Settlement(ledger, reserved, spent, prompt, completion, FAR)


async def test_a_new_bucket_is_full_then_refills_at_its_rate(make_store: MakeStore) -> None:
    clock = Clock()
    store = await make_store(clock)
    assert [await store.acquire([draw()]) for _ in range(3)] == [None, None, None]
    refused = await store.acquire([draw()])
    assert refused == Refusal("b", 1.0)
    clock.now += 0.5
    refused = await store.acquire([draw()])
    assert refused is not None and refused.retry_after == pytest.approx(0.5)
    clock.now += 0.5
    assert await store.acquire([draw()]) is None
    clock.now += 100  # never above capacity
    assert [await store.acquire([draw()]) is None for _ in range(4)] == [True, True, True, False]


async def test_draws_are_all_or_nothing_and_name_the_longest_wait(make_store: MakeStore) -> None:
    store = await make_store(Clock())
    assert await store.acquire([draw("a", capacity=1)]) is None
    refused = await store.acquire([draw("a", capacity=1, per_second=0.5), draw("c", capacity=5)])
    assert refused == Refusal("a", 2.0)
    # "c" gave nothing: all five tokens are still there
    assert [await store.acquire([draw("c", capacity=5)]) is None for _ in range(6)] == [True] * 5 + [False]


async def test_an_amount_larger_than_the_capacity_never_fits(make_store: MakeStore) -> None:
    store = await make_store(Clock())
    refused = await store.acquire([draw(capacity=10, amount=11)])
    assert refused is not None and math.isinf(refused.retry_after)


async def test_settle_takes_more_into_debt_or_gives_back_up_to_capacity(make_store: MakeStore) -> None:
    clock = Clock()
    store = await make_store(clock)
    tpm = Draw("tpm", 100, 10, 40)
    assert await store.acquire([tpm]) is None  # 60 left
    await store.settle([Draw("tpm", 100, 10, 90)])  # the answer used 90 more than estimated: -30
    refused = await store.acquire([Draw("tpm", 100, 10, 1)])
    assert refused is not None and refused.retry_after == pytest.approx(3.1)
    await store.settle([Draw("tpm", 100, 10, -500)])  # a refund never overfills
    assert await store.acquire([Draw("tpm", 100, 10, 100)]) is None
    assert await store.acquire([Draw("tpm", 100, 10, 1)]) is not None


async def test_a_reservation_fits_while_spent_plus_reserved_stays_within_the_limit(make_store: MakeStore) -> None:
    store = await make_store(Clock())
    assert await store.acquire([], reserve(0.4)) is None
    assert await store.acquire([], reserve(0.4)) is None
    assert await store.acquire([], reserve(0.4)) == Refusal("l", 0.0)
    assert await store.ledger("l") == Ledger(spent_usd=0.0, reserved_usd=0.8, requests=2)
    await store.settle([], settle(reserved=0.4, spent=0.1, prompt=7, completion=3))
    assert await store.ledger("l") == Ledger(0.1, 0.4, 2, 7, 3)
    assert await store.acquire([], reserve(0.4)) is None  # 0.1 + 0.4 + 0.4 <= 1
    assert await store.acquire([], reserve(0.2)) == Refusal("l", 0.0)


async def test_a_budget_refusal_takes_no_bucket_tokens_and_comes_first(make_store: MakeStore) -> None:
    store = await make_store(Clock())
    assert await store.acquire([draw(capacity=1)], reserve(1.0)) is None
    # both the bucket and the budget are exhausted: the refusal names the budget
    assert await store.acquire([draw(capacity=1)], reserve(0.5)) == Refusal("l", 0.0)
    await store.settle([], settle(reserved=1.0, spent=0.0))
    assert await store.acquire([draw("b2", capacity=1)], reserve(5.0, ledger="l2")) == Refusal("l2", 0.0)
    assert await store.acquire([draw("b2", capacity=1)]) is None  # the refused reservation left the bucket full


async def test_without_a_limit_a_reservation_is_only_counted(make_store: MakeStore) -> None:
    store = await make_store(Clock())
    for _ in range(3):
        assert await store.acquire([], reserve(100.0, limit=None)) is None
    assert (await store.ledger("l")).requests == 3


async def test_twenty_concurrent_reservations_against_a_nearly_spent_budget(make_store: MakeStore) -> None:
    store = await make_store(Clock())
    assert await store.acquire([], reserve(0.93)) is None
    await store.settle([], settle(reserved=0.93, spent=0.93))
    results = await asyncio.gather(*(store.acquire([], reserve(0.02)) for _ in range(20)))
    assert sum(r is None for r in results) == 3  # 0.93 + 3 × 0.02 <= 1 < 0.93 + 4 × 0.02
    ledger = await store.ledger("l")
    assert ledger.spent_usd + ledger.reserved_usd <= 1.0


async def test_ledgers_of_periods_over_are_dropped_when_a_new_one_starts() -> None:
    wall = Clock(1000.0)
    store = InProcessLimitStore(clock=Clock(), wall_clock=wall)
    assert await store.acquire([], Reservation("old", 0.1, None, 1500.0)) is None
    await store.settle([], Settlement("old", 0.1, 0.1, 1, 1, 1500.0))
    wall.now = 2000.0
    assert await store.acquire([], Reservation("new", 0.1, None, 3000.0)) is None
    assert await store.ledger("old") == Ledger()


async def test_spend_survives_a_restart_through_the_journal(tmp_path: Path) -> None:
    path = str(tmp_path / "state" / "spend.sqlite3")
    store = InProcessLimitStore(journal=SpendJournal(path), flush_interval=3600)
    await store.start()
    assert store.persistent
    assert await store.acquire([], reserve(0.5)) is None
    await store.settle([], settle(reserved=0.5, spent=0.25, prompt=10, completion=20))
    assert await store.acquire([], reserve(0.3)) is None  # in flight at shutdown: not carried over
    await store.aclose()  # the final flush writes what the interval did not

    again = InProcessLimitStore(journal=SpendJournal(path))
    await again.start()
    assert await again.ledger("l") == Ledger(spent_usd=0.25, reserved_usd=0.0, requests=2, prompt_tokens=10,
                                             completion_tokens=20)  # fmt: skip
    await again.aclose()


async def test_the_journal_is_written_in_the_background(tmp_path: Path) -> None:
    path = str(tmp_path / "spend.sqlite3")
    store = InProcessLimitStore(flush_interval=0.01)
    await store.persist_to(SpendJournal(path))
    await store.settle([], settle(reserved=0.0, spent=0.5))
    rows: list[tuple[str, float]] = []
    for _ in range(500):
        await asyncio.sleep(0.01)
        rows = _rows(path)
        if rows:
            break
    assert rows == [("l", 0.5)]
    await store.aclose()


def _rows(path: str) -> list[tuple[str, float]]:
    import sqlite3

    with sqlite3.connect(path) as db:
        return [(name, spent) for name, spent in db.execute("SELECT name, spent_usd FROM ledgers")]


async def test_a_journal_held_by_another_process_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "spend.sqlite3")
    holder = SpendJournal(path)
    holder.open(0.0)
    with pytest.raises(JournalError, match="another AILB process"):
        SpendJournal(path).open(0.0)
    holder.close()
    successor = SpendJournal(path)
    assert successor.open(0.0) == []
    successor.close()


def test_an_unusable_journal_path_is_an_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(JournalError, match="cannot use"):
        SpendJournal(str(blocker / "spend.sqlite3")).open(0.0)
