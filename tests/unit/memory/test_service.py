"""MemoryService logic on the in-memory store, with a deterministic keyword embedder standing in for the model:
no ChromaDB, no model. (The store itself is checked by the contract suite, against ChromaDB too.)"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from ailb.errors import InvalidRequestError
from ailb.memory.inmemory import InMemoryTurnStore
from ailb.memory.service import MemoryService, Recall, Turn
from ailb.memory.store import MemoryStoreError
from ailb.settings import MemoryConfig
from tests.polling import eventually
from tests.unit.memory.conftest import (
    InstrumentedStore,
    KeywordEmbedder,
    MemoryFactory,
    RecordingObserver,
)

ASK_NAME = [{"role": "user", "content": "What is my name?"}]


def alice(tenant: str = "t1", session: str = "s1", **kwargs: Any) -> Turn:
    return Turn(tenant, session, "My name is Alice", "Nice to meet you, Alice!", model="m", deployment="d", **kwargs)


async def test_recall_remembers_a_turn_before_and_after_it_is_written(make_memory: MemoryFactory) -> None:
    memory: MemoryService = await make_memory()
    memory.remember(alice())
    before = await memory.recall("t1", "s1", ASK_NAME)
    await memory.flush()
    after = await memory.recall("t1", "s1", ASK_NAME)
    for recall in (before, after):
        assert recall.turns == 1
        assert recall.message is not None and "My name is Alice" in recall.message["content"]
    assert memory.stats()["stored_turns"] == 1


async def test_short_sessions_are_recalled_without_any_embedding(make_memory: MemoryFactory) -> None:
    embedder = KeywordEmbedder()
    memory: MemoryService = await make_memory(embedder=embedder)
    for i in range(3):
        memory.remember(Turn("t1", "s1", f"fact {i}", f"noted {i}", timestamp=time.time() + i))
    await memory.flush()
    recall = await memory.recall("t1", "s1", ASK_NAME)
    assert recall.turns == 3
    assert embedder.queries == []


async def test_long_sessions_add_similar_older_turns_to_the_recent_ones(make_memory: MemoryFactory) -> None:
    embedder = KeywordEmbedder()
    store = InstrumentedStore()
    memory: MemoryService = await make_memory(
        embedder=embedder, store=store, recent_turns=2, top_k=1, max_tokens=300, similarity_threshold=0.2
    )
    now = time.time()
    memory.remember(Turn("t1", "s1", "My dog is called Rex", "Rex is a fine name.", timestamp=now))
    for i in range(1, 30):
        memory.remember(Turn("t1", "s1", f"Tell me about planet number {i}", "Planets " * 20, timestamp=now + i))
    await memory.flush()
    recall = await memory.recall("t1", "s1", [{"role": "user", "content": "What is the name of my dog?"}])
    assert recall.message is not None
    content = recall.message["content"]
    assert recall.turns == 3
    assert "Rex" in content
    assert content.index("Rex") < content.index("planet number 28") < content.index("planet number 29")
    assert embedder.queries == ["What is the name of my dog?"]
    assert (store.calls["embedded_turns"], store.calls["similar"]) == (1, 0)  # searched in process


async def test_a_long_new_message_is_matched_by_its_first_query_tokens(make_memory: MemoryFactory) -> None:
    embedder = KeywordEmbedder()
    memory: MemoryService = await make_memory(
        embedder=embedder, recent_turns=1, top_k=1, max_tokens=300, similarity_threshold=0.2, query_tokens=6
    )
    now = time.time()
    memory.remember(Turn("t1", "s1", "My dog is called Rex", "Rex is a fine name.", timestamp=now))
    memory.remember(Turn("t1", "s1", "Planets orbit stars", "Planets " * 20, timestamp=now + 1))
    for i in range(2, 30):
        memory.remember(Turn("t1", "s1", f"Filler question {i}", "Filler " * 20, timestamp=now + i))
    await memory.flush()
    question = "What is the name of my dog? Also, " + "tell me about planets and stars and planets. " * 10
    recall = await memory.recall("t1", "s1", [{"role": "user", "content": question}])
    assert embedder.queries == ["What is the name of my"]  # six words: the test model's tokens
    assert recall.message is not None
    assert "Rex" in recall.message["content"] and "Planets orbit" not in recall.message["content"]


async def test_a_long_session_is_read_once_then_searched_in_process_as_it_grows(make_memory: MemoryFactory) -> None:
    store = InstrumentedStore()
    memory: MemoryService = await make_memory(store=store, recent_turns=2, top_k=1, max_tokens=300)
    now = time.time()
    for i in range(30):
        memory.remember(Turn("t1", "s1", f"Tell me about planet number {i}", "Planets " * 20, timestamp=now + i))
    await memory.flush()
    ask_cat = [{"role": "user", "content": "What is my cat called?"}]
    first = await memory.recall("t1", "s1", ask_cat)
    assert first.message is not None and "Tom" not in first.message["content"]
    memory.remember(Turn("t1", "s1", "My cat is called Tom", "Tom is a fine name.", timestamp=now + 30))
    for i in range(31, 34):
        memory.remember(Turn("t1", "s1", f"Tell me about moon number {i}", "Moons " * 20, timestamp=now + i))
    await memory.flush()
    second = await memory.recall("t1", "s1", ask_cat)  # the cat is no longer among the recent turns
    assert second.message is not None and "Tom" in second.message["content"]
    assert (store.calls["embedded_turns"], store.calls["similar"]) == (1, 0)
    assert memory.stats()["indexed_sessions"] == 1
    assert await memory.delete_session("t1", "s1") == 34
    assert memory.stats()["indexed_sessions"] == 0
    for i in range(30):
        memory.remember(Turn("t1", "s1", f"Tell me about star number {i}", "Stars " * 20, timestamp=now + 40 + i))
    await memory.flush()
    third = await memory.recall("t1", "s1", ask_cat)
    assert (
        third.message is not None and "Tom" not in third.message["content"] and "planet" not in third.message["content"]
    )


async def test_a_shared_store_is_searched_in_the_store(make_memory: MemoryFactory) -> None:
    store = InstrumentedStore()
    memory: MemoryService = await make_memory(
        store=store, cached_sessions=0, recent_turns=2, top_k=1, max_tokens=300, similarity_threshold=0.2
    )
    now = time.time()
    memory.remember(Turn("t1", "s1", "My dog is called Rex", "Rex is a fine name.", timestamp=now))
    for i in range(1, 30):
        memory.remember(Turn("t1", "s1", f"Tell me about planet number {i}", "Planets " * 20, timestamp=now + i))
    await memory.flush()
    for _ in range(2):
        recall = await memory.recall("t1", "s1", [{"role": "user", "content": "What is the name of my dog?"}])
        assert recall.message is not None and "Rex" in recall.message["content"]
    assert (store.calls["embedded_turns"], store.calls["similar"]) == (0, 2)  # another process may write to it


async def test_a_session_view_is_read_from_the_store_once(make_memory: MemoryFactory) -> None:
    store = InstrumentedStore()
    memory: MemoryService = await make_memory(store=store)
    memory.remember(alice())
    await memory.flush()
    for _ in range(3):
        assert (await memory.recall("t1", "s1", ASK_NAME)).turns == 1
    memory.remember(Turn("t1", "s1", "I live in Paris", "Paris is lovely."))
    await memory.flush()
    assert (await memory.recall("t1", "s1", ASK_NAME)).turns == 2
    assert store.calls["load_view"] == 1


async def test_tenants_never_see_each_others_sessions(make_memory: MemoryFactory) -> None:
    memory: MemoryService = await make_memory()
    memory.remember(alice(tenant="t1", session="shared-id"))
    memory.remember(Turn("t2", "shared-id", "My name is Bob", "Hi Bob!"))
    await memory.flush()
    one = await memory.recall("t1", "shared-id", ASK_NAME)
    two = await memory.recall("t2", "shared-id", ASK_NAME)
    assert one.message is not None and "Alice" in one.message["content"] and "Bob" not in one.message["content"]
    assert two.message is not None and "Bob" in two.message["content"] and "Alice" not in two.message["content"]
    assert [t["user"] for t in await memory.list_turns("t2", "shared-id")] == ["My name is Bob"]
    assert await memory.delete_session("t2", "shared-id") == 1
    assert [t["user"] for t in await memory.list_turns("t1", "shared-id")] == ["My name is Alice"]
    assert (await memory.recall("t1", "shared-id", ASK_NAME)).turns == 1
    assert (await memory.recall("t3", "shared-id", ASK_NAME)).turns == 0


async def test_delete_erases_stored_and_queued_turns_at_once(make_memory: MemoryFactory) -> None:
    embedder = KeywordEmbedder()
    memory: MemoryService = await make_memory(embedder=embedder)
    memory.remember(alice())
    await memory.flush()
    embedder.hold()  # the writer waits: the next turn stays queued
    memory.remember(Turn("t1", "s1", "I live in Paris", "Paris is lovely."))
    assert (await memory.recall("t1", "s1", ASK_NAME)).turns == 2
    assert await memory.delete_session("t1", "s1") == 2
    embedder.set_ready()
    await memory.flush()
    assert (await memory.recall("t1", "s1", ASK_NAME)).turns == 0
    assert await memory.list_turns("t1", "s1") == []


async def test_list_turns_gives_every_field_oldest_first(make_memory: MemoryFactory) -> None:
    memory: MemoryService = await make_memory()
    memory.remember(alice(prompt_tokens=12, completion_tokens=7, timestamp=2000.0 + time.time()))
    memory.remember(Turn("t1", "s1", "first", "one", timestamp=1000.0 + time.time()))
    await memory.flush()
    turns = await memory.list_turns("t1", "s1")
    assert [t["user"] for t in turns] == ["first", "My name is Alice"]
    assert turns[1]["assistant"] == "Nice to meet you, Alice!"
    assert (turns[1]["model"], turns[1]["deployment"]) == ("m", "d")
    assert (turns[1]["prompt_tokens"], turns[1]["completion_tokens"]) == (12, 7)


async def test_full_history_clients_get_nothing_twice(make_memory: MemoryFactory) -> None:
    embedder = KeywordEmbedder()
    memory: MemoryService = await make_memory(embedder=embedder, recent_turns=2, max_tokens=60)
    history: list[dict[str, Any]] = []
    now = time.time()
    for i in range(8):
        user, answer = f"message {i} about topic {i}", f"reply {i} " * 5
        memory.remember(Turn("t1", "s1", user, answer, timestamp=now + i))
        history += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    await memory.flush()
    recall = await memory.recall("t1", "s1", [*history, {"role": "user", "content": "topic 3 again?"}])
    assert recall == Recall(None, 0)
    assert embedder.queries == []


async def test_while_the_model_loads_recall_works_and_only_long_sessions_wait(make_memory: MemoryFactory) -> None:
    embedder = KeywordEmbedder(ready=False)
    memory: MemoryService = await make_memory(embedder=embedder, max_tokens=100)
    assert memory.status() == "loading"
    memory.remember(alice())
    assert (await memory.recall("t1", "s1", ASK_NAME)).turns == 1
    await memory.flush()  # a short session needs no vector: stored without the model
    assert memory.stats()["stored_turns"] == 1
    memory.remember(Turn("t1", "long", "tell me everything", "word " * 200))
    await asyncio.sleep(0.05)
    assert memory.stats()["stored_turns"] == 1  # over the budget: waits for the model
    embedder.set_ready()
    await memory.flush()
    assert memory.status() == "ok"
    assert memory.stats()["stored_turns"] == 2


async def test_queued_counts_the_turns_of_the_batch_being_written_until_they_are_stored(
    make_memory: MemoryFactory,
) -> None:
    embedder = KeywordEmbedder(ready=False)
    memory: MemoryService = await make_memory(embedder=embedder, max_tokens=100)
    memory.remember(Turn("t1", "long", "tell me everything", "word " * 200))
    await asyncio.sleep(0.05)  # the writer has taken the turn off the queue and waits for the model
    assert memory.stats()["queued"] == 1
    embedder.set_ready()
    await memory.flush()
    assert memory.stats()["queued"] == 0
    assert memory.stats()["stored_turns"] == 1


async def test_only_sessions_past_the_budget_are_embedded_and_then_all_of_them(make_memory: MemoryFactory) -> None:
    embedder = KeywordEmbedder()
    memory: MemoryService = await make_memory(embedder=embedder, max_tokens=100)
    now = time.time()
    for i in range(3):
        memory.remember(Turn("t1", "s1", f"short question {i}", "short answer", timestamp=now + i))
        await memory.flush()
    assert embedder.embedded == []
    memory.remember(Turn("t1", "s1", "a long one", "word " * 300, timestamp=now + 10))
    await memory.flush()
    assert len(embedder.embedded) == 4  # the new turn and the three before it
    memory.remember(Turn("t1", "s1", "and another", "ok", timestamp=now + 11))
    await memory.flush()
    assert len(embedder.embedded) == 5
    assert memory.stats()["embedded_turns"] == 5


@pytest.mark.parametrize("shared", [False, True])
async def test_a_fully_embedded_session_is_not_searched_for_a_backfill_again(
    make_memory: MemoryFactory, shared: bool
) -> None:
    store = InstrumentedStore()
    memory: MemoryService = await make_memory(store=store, max_tokens=100, cached_sessions=0 if shared else 64)
    now = time.time()

    async def turn(i: int, answer: str = "ok") -> None:
        memory.remember(Turn("t1", "s1", f"question {i}", answer, timestamp=now + i))
        await memory.flush()

    await turn(0)
    await turn(1, "word " * 300)  # past the budget: the first turn is backfilled
    for i in range(2, 5):
        await turn(i)
    # One backfill query, then none; a store other processes write to is asked every time.
    assert store.calls["unembedded"] == (4 if shared else 1)
    await memory.delete_session("t1", "s1")
    await turn(5, "word " * 300)
    assert store.calls["unembedded"] == (5 if shared else 2)


async def test_a_backfill_never_brings_back_an_erased_session(make_memory: MemoryFactory) -> None:
    embedder = KeywordEmbedder()
    memory: MemoryService = await make_memory(embedder=embedder, max_tokens=100)
    for i in range(2):
        memory.remember(Turn("t1", "s1", f"short {i}", "answer", timestamp=time.time() + i))
    await memory.flush()
    embedder.gate = asyncio.Event()
    memory.remember(Turn("t1", "s1", "a long one", "word " * 300))
    await asyncio.wait_for(embedder.waiting.wait(), 5)  # the writer is embedding the backfill
    assert await memory.delete_session("t1", "s1") == 3
    embedder.gate.set()
    await memory.flush()
    assert await memory.list_turns("t1", "s1") == []


async def test_a_failing_store_degrades_memory_but_never_fails_recall(make_memory: MemoryFactory) -> None:
    store = InstrumentedStore()
    observer = RecordingObserver()
    memory: MemoryService = await make_memory(store=store, observer=observer, cached_sessions=0)
    memory.remember(alice())
    await memory.flush()
    store.broken = True
    assert (await memory.recall("t1", "s1", ASK_NAME)).turns == 0
    assert memory.status() == "degraded"
    memory.remember(alice(session="s2"))
    await memory.flush()
    with pytest.raises(MemoryStoreError) as listed:
        await memory.list_turns("t1", "s1")
    assert listed.value.status == 503
    with pytest.raises(MemoryStoreError):
        await memory.delete_session("t1", "s1")
    assert observer.failed == ["recall", "store", "list", "delete"]
    assert memory.failures == {"recall": 1, "store": 1, "list": 1, "delete": 1}
    assert (await memory.recall("t1", "s1", ASK_NAME)).turns == 0  # no waiting on a failing store
    assert memory.failures["recall"] == 1
    store.broken = False
    await eventually(lambda: memory.status() == "ok")  # the maintenance task's probe
    assert (await memory.recall("t1", "s1", ASK_NAME)).turns == 1


async def test_a_write_that_fails_briefly_is_retried_not_lost(make_memory: MemoryFactory) -> None:
    store = InstrumentedStore()
    memory: MemoryService = await make_memory(store=store, write_retries=(0.05, 0.05))
    store.broken = True
    memory.remember(alice())
    await eventually(lambda: memory.failures["store"] >= 1)
    assert (await memory.recall("t1", "s1", ASK_NAME)).turns == 1  # still queued, still recalled
    store.broken = False
    await memory.flush()
    assert [t["user"] for t in await memory.list_turns("t1", "s1")] == ["My name is Alice"]


async def test_a_failing_embedder_drops_the_batch_and_is_reported(make_memory: MemoryFactory) -> None:
    embedder = KeywordEmbedder()
    memory: MemoryService = await make_memory(embedder=embedder, max_tokens=5)
    embedder.failing = True
    memory.remember(alice())
    await memory.flush()
    assert memory.status() == "degraded"
    assert memory.failures["store"] == 1
    assert await memory.list_turns("t1", "s1") == []


async def test_a_full_queue_drops_turns_and_counts_them(make_memory: MemoryFactory) -> None:
    embedder = KeywordEmbedder(ready=False)
    observer = RecordingObserver()
    memory: MemoryService = await make_memory(embedder=embedder, observer=observer, queue_size=2)
    for i in range(5):
        memory.remember(Turn("t1", "s1", f"q{i}", f"a{i}", timestamp=time.time() + i))
    await asyncio.sleep(0)
    assert memory.dropped_turns >= 2
    assert observer.dropped == memory.dropped_turns
    embedder.set_ready()
    await memory.flush()
    assert len(await memory.list_turns("t1", "s1")) == 5 - memory.dropped_turns


async def test_retention_hides_and_prunes_old_turns(make_memory: MemoryFactory) -> None:
    memory: MemoryService = await make_memory(ttl_days=1.0)
    memory.remember(Turn("t1", "s1", "ancient", "history", timestamp=time.time() - 3 * 86400))
    memory.remember(alice())
    await memory.flush()
    recall = await memory.recall("t1", "s1", ASK_NAME)
    assert recall.turns == 1 and recall.message is not None and "ancient" not in recall.message["content"]
    await memory.prune()  # the maintenance task may have expired it already
    assert memory.stats()["expired_turns"] == 1
    assert [t["user"] for t in await memory.list_turns("t1", "s1")] == ["My name is Alice"]


async def test_retention_also_hides_old_turns_found_by_similarity(make_memory: MemoryFactory) -> None:
    started = time.time()
    now = [started]
    memory: MemoryService = await make_memory(
        recent_turns=2, top_k=2, max_tokens=300, similarity_threshold=0.2, ttl_days=1.0, clock=lambda: now[0]
    )
    memory.remember(Turn("t1", "s1", "My dog is called Rex", "Rex is a fine name.", timestamp=started - 43200))
    memory.remember(Turn("t1", "s1", "My cat is called Tom", "Tom is a fine name.", timestamp=started - 3600))
    for i in range(1, 30):
        memory.remember(Turn("t1", "s1", f"Tell me about planet number {i}", "Planets " * 20, timestamp=started + i))
    await memory.flush()
    question = [{"role": "user", "content": "What are the names of my dog and my cat?"}]
    before = await memory.recall("t1", "s1", question)
    assert before.message is not None and "Rex" in before.message["content"] and "Tom" in before.message["content"]
    now[0] = started + 0.6 * 86400  # the dog's turn is now older than a day; nothing has pruned it yet
    after = await memory.recall("t1", "s1", question)
    assert after.message is not None and "Tom" in after.message["content"]
    assert "Rex" not in after.message["content"]
    assert memory.stats()["expired_turns"] == 0
    assert await memory.prune() == 1


async def test_closing_writes_every_queued_turn_for_the_next_service() -> None:
    store = InMemoryTurnStore()

    def build() -> MemoryService:
        return MemoryService(MemoryConfig(), store, KeywordEmbedder())

    first = build()
    await first.start()
    first.remember(alice())
    await first.aclose()  # flushes the queue
    second = build()
    await second.start()
    try:
        recall = await second.recall("t1", "s1", ASK_NAME)
        assert recall.message is not None and "Alice" in recall.message["content"]
    finally:
        await second.aclose()


@pytest.mark.parametrize("session_id", ["", "a" * 129, "has space", "semi;colon", "ümlaut"])
async def test_bad_session_ids_are_rejected(make_memory: MemoryFactory, session_id: str) -> None:
    memory: MemoryService = await make_memory()
    for call in (memory.recall("t1", session_id, ASK_NAME), memory.list_turns("t1", session_id)):
        with pytest.raises(InvalidRequestError) as raised:
            await call
        assert raised.value.status == 400 and raised.value.param == "session_id"


async def test_session_ids_may_use_the_documented_characters(make_memory: MemoryFactory) -> None:
    memory: MemoryService = await make_memory()
    session = "User-42_a.b:c" + "x" * 115
    memory.remember(alice(session=session))
    await memory.flush()
    assert (await memory.recall("t1", session, ASK_NAME)).turns == 1


async def test_a_slow_store_costs_a_chat_request_at_most_the_recall_timeout(make_memory: MemoryFactory) -> None:
    store = InstrumentedStore()
    memory: MemoryService = await make_memory(store=store)
    memory.recall_timeout = 0.2
    store.silent = True
    started = time.monotonic()
    assert (await memory.recall("t1", "s1", ASK_NAME)).turns == 0
    assert time.monotonic() - started < 2
    assert memory.status() == "degraded" and memory.failures["recall"] == 1


async def test_a_saturated_model_costs_a_chat_request_at_most_the_recall_timeout(make_memory: MemoryFactory) -> None:
    embedder = KeywordEmbedder()
    memory: MemoryService = await make_memory(embedder=embedder, recent_turns=2, top_k=1, max_tokens=300)
    now = time.time()
    for i in range(30):
        memory.remember(Turn("t1", "s1", f"Tell me about planet number {i}", "Planets " * 20, timestamp=now + i))
    await memory.flush()
    memory.recall_timeout = 0.2
    embedder.gate = asyncio.Event()  # every embedding now waits: the model is busy with others' work
    async with asyncio.timeout(10):  # a guard against hanging, as recall did before it had a limit
        recall = await memory.recall("t1", "s1", [{"role": "user", "content": "Which planet was first?"}])
    assert recall.turns == 2  # the recent turns, without the similar ones
    assert memory.failures["recall"] == 1
    assert memory.status() == "ok"  # busy is not broken: the next request tries the model again
    embedder.gate.set()


async def test_turns_arriving_together_are_written_in_one_batch() -> None:
    store = InstrumentedStore()
    memory = MemoryService(MemoryConfig(), store, KeywordEmbedder(), write_linger=0.1)
    await memory.start()
    try:
        for i in range(5):
            memory.remember(Turn("t1", f"s{i}", f"q{i}", f"a{i}"))
            await asyncio.sleep(0.005)
        await memory.flush()
        assert store.calls["add"] == 1
        assert memory.stats()["stored_turns"] == 5
    finally:
        await memory.aclose()
