"""The in-process similarity index of a session's turns, and its bounded cache."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ailb.memory.index import IndexCache, SessionIndex
from ailb.memory.models import EmbeddedTurns, StoredTurn, Turn
from ailb.memory.store import MemoryStoreError


def stored(session: str, index: int) -> StoredTurn:
    return StoredTurn.of(Turn("t", session, f"q{index}", "answer", timestamp=1000.0 + index))


def unit(*values: float) -> list[float]:
    vector = np.asarray(values, dtype=np.float32)
    return (vector / np.linalg.norm(vector)).tolist()  # type: ignore[no-any-return]


def embedded(*pairs: tuple[StoredTurn, list[float]]) -> EmbeddedTurns:
    return [t for t, _ in pairs], np.asarray([v for _, v in pairs], dtype=np.float32)


def test_the_most_similar_turns_come_first_with_their_cosine() -> None:
    same, between, orthogonal = stored("s", 0), stored("s", 1), stored("s", 2)
    index = SessionIndex.of(embedded((orthogonal, unit(0, 1)), (same, unit(1, 0)), (between, unit(0.6, 0.8))), 2)
    found = index.similar(unit(1, 0), 5)
    assert [t for t, _ in found] == [same, between, orthogonal]
    assert [score for _, score in found] == pytest.approx([1.0, 0.6, 0.0], abs=1e-6)
    assert [t for t, _ in index.similar(unit(1, 0), 2)] == [same, between]
    assert index.similar(unit(1, 0), 0) == [] and SessionIndex(2).similar(unit(1, 0), 3) == []


def test_turns_added_one_by_one_are_searched_like_loaded_ones() -> None:
    index = SessionIndex(2)
    turns = [stored("s", i) for i in range(20)]
    for i, turn in enumerate(turns):
        index.add(turn, unit(1, i))
    assert len(index) == 20
    assert [t for t, _ in index.similar(unit(1, 19), 1)] == [turns[19]]
    index.add(turns[0], unit(1, 30))  # stored again (embedded later): replaced, not duplicated
    assert len(index) == 20
    assert [t for t, _ in index.similar(unit(1, 30), 1)] == [turns[0]]
    with pytest.raises(ValueError):
        index.add(stored("s", 99), [1.0, 0.0, 0.0])
    with pytest.raises(ValueError):
        SessionIndex.of(embedded((turns[0], [1.0, 0.0, 0.0])), 2)


def test_the_cache_is_bounded_by_sessions_and_bytes() -> None:
    cache = IndexCache(capacity=2)
    for name in ("a", "b", "c"):
        cache.finish_load(
            ("t", name), cache.begin_load(("t", name)), SessionIndex.of(embedded((stored(name, 0), unit(1, 0))), 2)
        )
    assert cache.get(("t", "a")) is None and len(cache) == 2
    one = SessionIndex.of(embedded((stored("d", 0), unit(1, 0))), 2)
    small = IndexCache(capacity=8, max_bytes=one.nbytes)
    small.finish_load(("t", "d"), small.begin_load(("t", "d")), one)
    small.add(stored("d", 1), unit(0, 1))  # now larger than the whole budget: dropped
    assert small.get(("t", "d")) is None and small.held_bytes == 0


def test_a_load_overtaken_by_a_write_is_used_once_but_not_cached() -> None:
    cache = IndexCache(capacity=4)
    key = ("t", "s")
    token = cache.begin_load(key)
    cache.add(stored("s", 5), unit(1, 0))  # written while the load was reading the store
    cache.finish_load(key, token, SessionIndex(2))
    assert cache.get(key) is None
    cache.finish_load(key, cache.begin_load(key), SessionIndex(2))
    cache.add(stored("s", 6), unit(1, 0))
    index = cache.get(key)
    assert index is not None and len(index) == 1
    cache.add(stored("s", 7), [1.0, 0.0, 0.0])  # a vector of another size: the index is read again later
    assert cache.get(key) is None


async def test_requests_waiting_together_share_one_load() -> None:
    cache = IndexCache(capacity=4)
    key = ("t", "s")
    gate = asyncio.Event()
    loads = 0
    turn = stored("s", 0)

    async def load() -> EmbeddedTurns:
        nonlocal loads
        loads += 1
        await gate.wait()
        return embedded((turn, unit(1, 0)))

    searches = [asyncio.create_task(cache.similar(key, unit(1, 0), 3, load)) for _ in range(3)]
    await asyncio.sleep(0)
    searches[0].cancel()  # one request gives up: the others still get the load
    gate.set()
    results = await asyncio.gather(*searches[1:])
    assert [[t for t, _ in found] for found in results] == [[turn], [turn]]
    assert loads == 1 and len(cache) == 1


async def test_vectors_that_do_not_fit_the_model_are_a_store_failure() -> None:
    async def load() -> EmbeddedTurns:
        return embedded((stored("s", 0), [1.0, 0.0, 0.0]))

    with pytest.raises(MemoryStoreError):
        await IndexCache(capacity=4).similar(("t", "s"), unit(1, 0), 3, load)
