"""The session view cache: bounded by sessions and by text held, kept current by writes, voided by changes."""

from __future__ import annotations

from ailb.memory.cache import SessionCache
from ailb.memory.models import SessionView, StoredTurn, Turn


def stored(session: str, index: int, size: int = 10) -> StoredTurn:
    return StoredTurn.of(Turn("t", session, f"q{index}", "x" * size, timestamp=1000.0 + index))


def view_of(*turns: StoredTurn) -> SessionView:
    return SessionView(len(turns), sum(t.tokens for t in turns), list(turns), complete=True)


def load(cache: SessionCache, session: str, view: SessionView) -> None:
    cache.finish_load(("t", session), cache.begin_load(("t", session)), view)


def test_least_recently_used_sessions_go_first() -> None:
    cache = SessionCache(capacity=2, keep_recent=4, complete_limit=1000)
    for name in ("a", "b"):
        load(cache, name, view_of(stored(name, 0)))
    assert cache.get(("t", "a")) is not None
    load(cache, "c", view_of(stored("c", 0)))
    assert cache.get(("t", "b")) is None
    assert cache.get(("t", "a")) is not None and cache.get(("t", "c")) is not None


def test_the_text_held_is_bounded() -> None:
    big = stored("a", 0, size=4000)
    cache = SessionCache(capacity=100, keep_recent=4, complete_limit=10_000, max_tokens=big.tokens + 50)
    load(cache, "a", view_of(big))
    load(cache, "b", view_of(stored("b", 0, size=400)))
    assert cache.get(("t", "a")) is None and cache.get(("t", "b")) is not None
    assert cache.held_tokens == stored("b", 0, size=400).tokens


def test_writes_extend_a_cached_view_and_trim_it_once_it_is_large() -> None:
    cache = SessionCache(capacity=10, keep_recent=2, complete_limit=60)
    load(cache, "a", view_of(stored("a", 0)))
    for i in range(1, 5):
        cache.add(stored("a", i, size=40))
    view = cache.get(("t", "a"))
    assert view is not None and not view.complete and view.count == 5
    assert [t.turn.user for t in view.turns] == ["q3", "q4"]
    assert cache.held_tokens == view.held_tokens


def test_a_load_overtaken_by_a_write_is_not_cached() -> None:
    cache = SessionCache(capacity=10, keep_recent=2, complete_limit=1000)
    token = cache.begin_load(("t", "a"))
    cache.add(stored("a", 1))
    cache.finish_load(("t", "a"), token, view_of(stored("a", 0)))
    assert cache.get(("t", "a")) is None


def test_invalidate_drops_the_view_and_its_size() -> None:
    cache = SessionCache(capacity=10, keep_recent=2, complete_limit=1000)
    load(cache, "a", view_of(stored("a", 0)))
    cache.invalidate(("t", "a"))
    assert cache.get(("t", "a")) is None and cache.held_tokens == 0 and len(cache) == 0
