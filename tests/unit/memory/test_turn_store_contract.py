"""The conversation store contract, one suite run against both implementations: the in-memory store the unit
tests use and ChromaDB (embedded, on threads), so the two cannot drift apart."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ailb.memory.chroma_store import ChromaTurnStore
from ailb.memory.inmemory import InMemoryTurnStore
from ailb.memory.models import StoredTurn, Turn
from ailb.memory.store import MemoryStoreError, TurnStore

VECTOR = [1.0, 0.0, 0.0]


@pytest_asyncio.fixture(params=["in-memory", "chromadb"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TurnStore]:
    opened: TurnStore = (
        InMemoryTurnStore()
        if request.param == "in-memory"
        else ChromaTurnStore("ailb-memory-unit", path=str(tmp_path / "m"), worker_process=False)
    )
    await opened.open()
    yield opened
    await opened.aclose()


def stored(tenant: str, session: str, user: str, assistant: str, at: float = 1000.0) -> StoredTurn:
    return StoredTurn.of(Turn(tenant, session, user, assistant, model="m", deployment="d", timestamp=at))


async def test_text_with_newlines_round_trips_exactly(store: TurnStore) -> None:
    original = stored("t", "s", "line one\nline two\n", "\nreply\nwith lines")
    await store.add([original], [VECTOR], 3)
    [back] = await store.list_turns("t", "s")
    assert back == original


async def test_every_field_round_trips(store: TurnStore) -> None:
    original = StoredTurn.of(Turn("t", "s", "q", "a", model="gpt-4o", deployment="east", prompt_tokens=12,
                                  completion_tokens=7, timestamp=1234.5))  # fmt: skip
    await store.add([original], [None], 3)
    assert await store.list_turns("t", "s") == [original]
    view = await store.load_view("t", "s", keep_recent=4, complete_limit=1000)
    assert view.turns == [original]


async def test_every_read_and_delete_is_scoped_to_tenant_and_session(store: TurnStore) -> None:
    turns = [stored("t1", "s", "a", "1"), stored("t2", "s", "b", "2"), stored("t1", "other", "c", "3")]
    await store.add(turns, [VECTOR] * 3, 3)
    assert [t.turn.user for t in await store.list_turns("t1", "s")] == ["a"]
    assert [t.turn.user for t, _ in await store.similar("t1", "s", VECTOR, 10)] == ["a"]
    view = await store.load_view("t1", "s", keep_recent=4, complete_limit=1000)
    assert (view.count, [t.turn.user for t in view.turns], view.complete) == (1, ["a"], True)
    assert await store.session_tokens("t1", "s") == turns[0].tokens
    assert await store.delete_session("t1", "s") == [turns[0].id]
    assert [t.turn.user for t in await store.list_turns("t2", "s")] == ["b"]
    assert [t.turn.user for t in await store.list_turns("t1", "other")] == ["c"]
    assert await store.delete_session("t3", "s") == []


async def test_turns_come_back_oldest_first(store: TurnStore) -> None:
    turns = [stored("t", "s", f"q{i}", "x", at=1000.0 + i) for i in (3, 0, 2, 1)]
    await store.add(turns, [None] * 4, 3)
    assert [t.turn.user for t in await store.list_turns("t", "s")] == ["q0", "q1", "q2", "q3"]
    assert [t.turn.user for t in await store.unembedded("t", "s")] == ["q0", "q1", "q2", "q3"]


async def test_a_small_session_view_is_complete(store: TurnStore) -> None:
    turns = [stored("t", "s", f"q{i}", "x", at=1000.0 + i) for i in range(3)]
    await store.add(turns, [VECTOR] * 3, 3)
    view = await store.load_view("t", "s", keep_recent=1, complete_limit=sum(t.tokens for t in turns))
    assert view.complete and view.count == 3 and view.turns == turns


async def test_a_large_session_view_keeps_only_the_newest_turns(store: TurnStore) -> None:
    turns = [stored("t", "s", f"q{i}", "x" * 40, at=1000.0 + i) for i in range(6)]
    await store.add(turns, [VECTOR] * 6, 3)
    view = await store.load_view("t", "s", keep_recent=2, complete_limit=turns[0].tokens * 3)
    assert not view.complete and view.count == 6
    assert view.total_tokens == sum(t.tokens for t in turns)
    assert [t.turn.user for t in view.turns] == ["q4", "q5"]
    none_kept = await store.load_view("t", "s", keep_recent=0, complete_limit=1)
    assert (none_kept.count, none_kept.turns, none_kept.complete) == (6, [], False)


async def test_similarity_is_cosine_best_first_and_limited(store: TurnStore) -> None:
    turns = [stored("t", "s", "same", "x"), stored("t", "s", "orthogonal", "y", at=1001.0),
             stored("t", "s", "between", "z", at=1002.0)]  # fmt: skip
    await store.add(turns, [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.8, 0.0]], 3)
    found = await store.similar("t", "s", VECTOR, 5)
    assert [t.turn.user for t, _ in found] == ["same", "between", "orthogonal"]
    assert [score for _, score in found] == pytest.approx([1.0, 0.6, 0.0], abs=1e-4)
    assert [t.turn.user for t, _ in await store.similar("t", "s", VECTOR, 1)] == ["same"]


async def test_embedded_turns_come_with_their_vectors_oldest_first(store: TurnStore) -> None:
    later, earlier = stored("t", "s", "later", "x", at=1002.0), stored("t", "s", "earlier", "y", at=1001.0)
    plain, elsewhere = stored("t", "s", "plain", "z", at=1003.0), stored("u", "s", "other tenant", "w")
    await store.add([later, earlier, plain, elsewhere], [[0.0, 1.0, 0.0], VECTOR, None, VECTOR], 3)
    turns, vectors = await store.embedded_turns("t", "s")
    assert turns == [earlier, later]
    assert vectors.tolist() == [VECTOR, [0.0, 1.0, 0.0]]
    empty, no_vectors = await store.embedded_turns("t", "nothing")
    assert empty == [] and len(no_vectors) == 0


async def test_expiry_removes_only_older_turns(store: TurnStore) -> None:
    await store.add([stored("t", "s", "old", "x", at=10.0), stored("u", "z", "new", "y", at=time.time())],
                    [VECTOR, VECTOR], 3)  # fmt: skip
    assert await store.delete_older_than(time.time() - 60) == 1
    assert await store.list_turns("t", "s") == []
    assert [t.turn.user for t in await store.list_turns("u", "z")] == ["new"]
    assert await store.delete_older_than(0.0) == 0


async def test_unembedded_turns_are_kept_but_never_searched(store: TurnStore) -> None:
    plain, searchable = stored("t", "s", "plain", "x"), stored("t", "s", "searchable", "y", at=1001.0)
    await store.add([plain, searchable], [None, VECTOR], 3)
    assert [t.turn.user for t in await store.list_turns("t", "s")] == ["plain", "searchable"]
    assert [t.turn.user for t, _ in await store.similar("t", "s", VECTOR, 5)] == ["searchable"]
    assert await store.unembedded("t", "s") == [plain]
    assert await store.session_tokens("t", "s") == plain.tokens + searchable.tokens
    await store.add([plain], [[0.0, 1.0, 0.0]], 3)  # embedded later: now searchable, stored once
    assert await store.unembedded("t", "s") == []
    assert len(await store.similar("t", "s", VECTOR, 5)) == 2
    assert len(await store.list_turns("t", "s")) == 2


async def test_a_vector_of_another_size_is_a_store_failure(store: TurnStore) -> None:
    await store.add([stored("t", "s", "q", "a")], [VECTOR], 3)
    with pytest.raises(MemoryStoreError):
        await store.add([stored("t", "s", "q2", "a2", at=1001.0)], [[1.0, 0.0]], 2)
    with pytest.raises(MemoryStoreError):
        await store.similar("t", "s", [1.0, 0.0], 5)
    assert [t.turn.user for t in await store.list_turns("t", "s")] == ["q"]


async def test_an_empty_session_is_empty_everywhere(store: TurnStore) -> None:
    await store.ping()
    assert await store.list_turns("t", "s") == []
    assert await store.unembedded("t", "s") == []
    assert await store.session_tokens("t", "s") == 0
    view = await store.load_view("t", "s", keep_recent=4, complete_limit=100)
    assert (view.count, view.total_tokens, view.turns, view.complete) == (0, 0, [], True)
