"""The ChromaDB store on its own: round trips, scoping, names, and bounded waits on a silent server."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ailb.memory.chroma_store import ChromaTurnStore, collection_name
from ailb.memory.models import StoredTurn, Turn
from ailb.memory.store import MemoryStoreError
from ailb.settings import ConfigError

VECTOR = [1.0, 0.0, 0.0]


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[ChromaTurnStore]:
    opened = ChromaTurnStore("ailb-memory-unit", path=str(tmp_path / "m"), worker_process=False)
    await opened.open()
    yield opened
    await opened.aclose()


def stored(tenant: str, session: str, user: str, assistant: str, at: float = 1000.0) -> StoredTurn:
    return StoredTurn.of(Turn(tenant, session, user, assistant, model="m", deployment="d", timestamp=at))


async def test_text_with_newlines_round_trips_exactly(store: ChromaTurnStore) -> None:
    original = stored("t", "s", "line one\nline two\n", "\nreply\nwith lines")
    await store.add([original], [VECTOR], 3)
    [back] = await store.list_turns("t", "s")
    assert back == original


async def test_every_read_and_delete_is_scoped_to_tenant_and_session(store: ChromaTurnStore) -> None:
    turns = [stored("t1", "s", "a", "1"), stored("t2", "s", "b", "2"), stored("t1", "other", "c", "3")]
    await store.add(turns, [VECTOR] * 3, 3)
    assert [t.turn.user for t in await store.list_turns("t1", "s")] == ["a"]
    assert [t.turn.user for t, _ in await store.similar("t1", "s", VECTOR, 10)] == ["a"]
    view = await store.load_view("t1", "s", keep_recent=4, complete_limit=1000)
    assert (view.count, [t.turn.user for t in view.turns], view.complete) == (1, ["a"], True)
    assert await store.delete_session("t1", "s") == [turns[0].id]
    assert [t.turn.user for t in await store.list_turns("t2", "s")] == ["b"]
    assert [t.turn.user for t in await store.list_turns("t1", "other")] == ["c"]


async def test_a_large_session_view_keeps_only_the_newest_turns(store: ChromaTurnStore) -> None:
    turns = [stored("t", "s", f"q{i}", "x" * 40, at=1000.0 + i) for i in range(6)]
    await store.add(turns, [VECTOR] * 6, 3)
    view = await store.load_view("t", "s", keep_recent=2, complete_limit=turns[0].tokens * 3)
    assert not view.complete and view.count == 6
    assert view.total_tokens == sum(t.tokens for t in turns)
    assert [t.turn.user for t in view.turns] == ["q4", "q5"]


async def test_similarity_is_cosine(store: ChromaTurnStore) -> None:
    await store.add([stored("t", "s", "same", "x"), stored("t", "s", "orthogonal", "y", at=1001.0)],
                    [VECTOR, [0.0, 1.0, 0.0]], 3)  # fmt: skip
    found = {t.turn.user: score for t, score in await store.similar("t", "s", VECTOR, 5)}
    assert found["same"] == pytest.approx(1.0, abs=1e-4)
    assert found["orthogonal"] == pytest.approx(0.0, abs=1e-4)


async def test_expiry_removes_only_older_turns(store: ChromaTurnStore) -> None:
    await store.add([stored("t", "s", "old", "x", at=10.0), stored("t", "s", "new", "y", at=time.time())],
                    [VECTOR, VECTOR], 3)  # fmt: skip
    assert await store.delete_older_than(time.time() - 60) == 1
    assert [t.turn.user for t in await store.list_turns("t", "s")] == ["new"]


async def test_unembedded_turns_are_kept_but_never_searched(store: ChromaTurnStore) -> None:
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


def test_collection_names_are_valid_and_differ_per_model() -> None:
    names = {collection_name(n) for n in ("local:all-MiniLM-L6-v2", "provider:text-embedding-3-small", "provider:x")}
    assert len(names) == 3
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]", name)


async def test_an_embedded_store_runs_in_its_own_worker_process(tmp_path: Path) -> None:
    store = ChromaTurnStore("ailb-memory-unit", path=str(tmp_path / "m"))
    await store.open()
    try:
        original = stored("t", "s", "hello", "there")
        await store.add([original], [VECTOR], 3)
        assert await store.list_turns("t", "s") == [original]
        assert await store.similar("t", "s", VECTOR, 3) == [(original, pytest.approx(1.0, abs=1e-4))]
    finally:
        await store.aclose()
    reopened = ChromaTurnStore("ailb-memory-unit", path=str(tmp_path / "m"))
    await reopened.open()
    try:
        assert await reopened.list_turns("t", "s") == [original]
    finally:
        await reopened.aclose()


async def test_two_stores_never_share_an_embedded_folder(tmp_path: Path, store: ChromaTurnStore) -> None:
    second = ChromaTurnStore("ailb-memory-unit", path=str(tmp_path / "m"), worker_process=False)
    with pytest.raises(ConfigError, match="another process is using this folder") as raised:
        await second.open()
    assert raised.value.key == "MEMORY_PATH"
    await second.aclose()
    await store.aclose()  # releases the folder
    third = ChromaTurnStore("ailb-memory-unit", path=str(tmp_path / "m"), worker_process=False)
    await third.open()
    await third.aclose()


async def test_a_server_that_never_answers_is_a_bounded_failure() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections at the kernel level, never answers
    try:
        store = ChromaTurnStore("ailb-memory-unit", host="127.0.0.1", port=silent.getsockname()[1], timeout=0.3)
        started = time.monotonic()
        with pytest.raises(MemoryStoreError):
            await store.open()
        with pytest.raises(MemoryStoreError):
            await store.list_turns("t", "s")
        assert time.monotonic() - started < 5
        await store.aclose()
    finally:
        silent.close()
        await asyncio.sleep(0)
