"""The Redis LimitStore beyond the shared contract: one limit for several instances, Redis's own clock and key
expiry, cancellation, lost scripts, passwords — and the fleet store's per-instance fallback while Redis is down,
with everything merged back when it returns. Against real ``redis-server`` processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from ailb.state import Draw, Ledger, Refusal, Reservation, Settlement
from ailb.state.fleet import FleetLimitStore
from ailb.state.redis_limits import RedisLimitStore, bucket_key, ledger_key
from ailb.state.redis_link import RedisLink
from ailb.state.redis_scripts import SCRIPTS
from tests.polling import eventually
from tests.redis_server import RedisServer
from tests.unit.state.conftest import Failures

FAR = 4_000_000_000.0
Links = Callable[..., Awaitable[RedisLink]]


@pytest_asyncio.fixture
async def links() -> AsyncIterator[Links]:
    """``await links(url)``: a started link (``start=False``: not yet), closed after the test."""
    made: list[RedisLink] = []

    async def make(url: str, failures: Failures | None = None, start: bool = True) -> RedisLink:
        link = RedisLink(url, failures or Failures(), SCRIPTS, backoff_max=0.2)
        made.append(link)
        if start:
            await link.start()
        return link

    yield make
    for link in made:
        await link.aclose()


def rpm(amount: float = 1) -> Draw:
    return Draw("rpm:team", 10, 10 / 60, amount)


async def test_two_instances_share_one_limit(redis_server: RedisServer, links: Links) -> None:
    first, second = RedisLimitStore(await links(redis_server.url)), RedisLimitStore(await links(redis_server.url))
    granted = [await (first if i % 2 else second).acquire([rpm()]) is None for i in range(16)]
    assert granted.count(True) == 10  # not 10 per instance
    assert await first.acquire([], Reservation("spend", 0.6, 1.0, FAR)) is None
    assert await second.acquire([], Reservation("spend", 0.6, 1.0, FAR)) == Refusal("spend", 0.0)
    assert (await second.ledger("spend")).reserved_usd == pytest.approx(0.6)


async def test_buckets_and_ledgers_expire_in_redis(redis_server: RedisServer, links: Links) -> None:
    store = RedisLimitStore(await links(redis_server.url))  # Redis TIME: the server's clock
    assert await store.acquire([Draw("rps", 5, 1, 2)], Reservation("spend", 0.1, None, time.time() + 3600)) is None
    bucket_ttl = int(redis_server.command("PTTL", bucket_key("rps")).strip()[1:])
    assert 2000 < bucket_ttl <= 3000  # refilled (2 tokens at 1/s) in 2 s, then it is a full bucket again
    ledger_ttl = int(redis_server.command("TTL", ledger_key("spend")).strip()[1:])
    assert 86400 + 3500 < ledger_ttl <= 86400 + 3601  # a day after the period ends


async def test_a_cancelled_acquire_leaves_nothing_taken(redis_server: RedisServer, links: Links) -> None:
    store = RedisLimitStore(await links(redis_server.url))
    cancelled = completed = 0
    for delay in (0, 0, 0.0002, 0.0005, 0.001, 0.002, 0.005):
        task = asyncio.create_task(store.acquire([rpm()], Reservation("spend", 0.5, None, FAR)))
        await asyncio.sleep(delay)
        if task.done():  # too late to cancel: this one was granted
            assert task.result() is None
            completed += 1
            continue
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        cancelled += 1
    assert cancelled >= 2
    await store.aclose()  # waits for the grants that landed after their cancellation to be undone
    assert await store.ledger("spend") == Ledger(reserved_usd=0.5 * completed, requests=completed)
    left = 10 - completed
    assert [await store.acquire([rpm()]) is None for _ in range(left + 1)].count(True) == left


async def test_scripts_lost_by_the_server_are_loaded_again(redis_server: RedisServer, links: Links) -> None:
    store = RedisLimitStore(await links(redis_server.url))
    assert redis_server.command("SCRIPT", "FLUSH").startswith(b"+OK")
    assert await store.acquire([rpm()]) is None  # alone
    assert redis_server.command("SCRIPT", "FLUSH").startswith(b"+OK")
    together = await asyncio.gather(*(store.acquire([rpm()]) for _ in range(5)))  # in one pipeline
    assert together == [None] * 5
    assert [await store.acquire([rpm()]) is None for _ in range(5)] == [True, True, True, True, False]


async def test_a_password_is_used_and_a_wrong_one_is_a_failure(tmp_path: Path, links: Links) -> None:
    server = RedisServer(tmp_path / "redis", password="s3cret-redis-pass").start()
    try:
        store = RedisLimitStore(await links(server.url))
        assert store.link.up and await store.acquire([rpm()]) is None
        failures = Failures()
        wrong = await links(server.url.replace("s3cret", "wrong"), failures)
        assert not wrong.up and failures.operations == ["connect"]
    finally:
        server.stop()


async def test_rediss_with_a_password(tmp_path: Path, links: Links) -> None:
    server = RedisServer(tmp_path / "redis", password="tls-redis-pass", tls=True).start()
    try:
        assert server.url.startswith("rediss://")
        store = RedisLimitStore(await links(server.url))
        assert store.link.up
        assert [await store.acquire([rpm()]) is None for _ in range(11)].count(True) == 10
        plain = await links(server.url.replace("rediss://", "redis://").partition("?")[0])
        assert not plain.up  # the server speaks only TLS
    finally:
        server.stop()


async def test_the_fleet_store_falls_back_per_instance_and_merges_back(own_redis: RedisServer, links: Links) -> None:
    failures = Failures()
    link = await links(own_redis.url, failures, start=False)
    fleet = FleetLimitStore(RedisLimitStore(link), divisor=2)
    await link.start()
    assert fleet.shared
    assert await fleet.acquire([], Reservation("spend", 0.3, 1.0, FAR)) is None  # held in Redis
    assert (await fleet.ledger("spend")).requests == 1  # what the fleet store last read

    own_redis.stop()
    granted = [await fleet.acquire([rpm()]) is None for _ in range(8)]
    assert granted.count(True) == 5  # rpm 10 ÷ 2 instances
    assert not fleet.shared and "acquire" in failures.operations
    # the budget here: (1.0 − the 0.3 the fleet had reserved) ÷ 2 = 0.35
    assert await fleet.acquire([], Reservation("spend", 0.2, 1.0, FAR)) is None
    assert await fleet.acquire([], Reservation("spend", 0.2, 1.0, FAR)) == Refusal("spend", 0.0)
    await fleet.settle([], Settlement("spend", 0.3, 0.25, 10, 5, FAR))  # the reservation Redis holds
    during = await fleet.ledger("spend")
    assert (during.spent_usd, during.reserved_usd, during.requests) == (pytest.approx(0.25), pytest.approx(0.2), 2)

    own_redis.start()  # same port, its data back from disk
    await eventually(lambda: fleet.shared)
    other = RedisLimitStore(await links(own_redis.url))  # another instance, to look into Redis
    merged = await other.ledger("spend")
    assert merged == Ledger(pytest.approx(0.25), pytest.approx(0.2), 2, 10, 5)  # type: ignore[arg-type]
    await fleet.settle([], Settlement("spend", 0.2, 0.1, 1, 1, FAR))  # reserved during the outage, now in Redis
    assert await other.ledger("spend") == Ledger(pytest.approx(0.35), 0.0, 2, 11, 6)  # type: ignore[arg-type]
    # the limit is the fleet's again: the per-instance buckets are gone, Redis's own rpm bucket was untouched
    assert [await fleet.acquire([rpm()]) is None for _ in range(11)].count(True) == 10


async def test_a_hung_redis_is_a_failure_within_the_timeout(own_redis: RedisServer, links: Links) -> None:
    failures = Failures()
    link = await links(own_redis.url, failures, start=False)
    fleet = FleetLimitStore(RedisLimitStore(link), divisor=1)
    await link.start()
    own_redis.pause()
    try:
        assert await fleet.acquire([rpm()]) is None  # answered from the fallback once the call timed out
        assert not fleet.shared
        assert await fleet.acquire([rpm()]) is None  # no more waiting: the link is down
    finally:
        own_redis.resume()
    await eventually(lambda: fleet.shared)
    assert failures.operations[0] == "acquire"
