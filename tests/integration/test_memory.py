"""Conversation memory with the real parts: the packaged MiniLM model and ChromaDB, embedded and as a server."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ailb.embeddings.local import LocalEmbedder
from ailb.memory.chroma_store import ChromaTurnStore, collection_name
from ailb.memory.service import MemoryService, Turn
from ailb.settings import ConfigError, MemoryConfig, load_settings
from tests.integration.chroma_server import ChromaServer

pytestmark = pytest.mark.slow
ASK_NAME = [{"role": "user", "content": "What is my name?"}]
REPO = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture
async def embedder() -> AsyncIterator[LocalEmbedder]:
    """The real model. It is loaded once per process; later embedders share it and are ready at once."""
    model = LocalEmbedder()
    await model.start()
    await model.wait_ready()
    yield model
    await model.aclose()


def memory_for(path: Path, model: LocalEmbedder, **config: object) -> MemoryService:
    settings = load_settings({"MEMORY_PATH": str(path), **{k: str(v) for k, v in config.items()}})
    return MemoryService.from_settings(settings, model)


async def test_the_packaged_model_embeds_meaning(embedder: LocalEmbedder) -> None:
    name, question, cats = await embedder.embed(["My name is Alice", "What is my name?", "Cats sleep a lot"])
    assert len(name) == embedder.dimensions == 384
    assert all(math.isclose(sum(v * v for v in vector), 1.0, rel_tol=1e-4) for vector in (name, question, cats))
    similarity = sum(a * b for a, b in zip(name, question, strict=True))
    unrelated = sum(a * b for a, b in zip(cats, question, strict=True))
    assert similarity > 0.3 > unrelated
    again = await embedder.embed_query("What is my name?")
    assert again == pytest.approx(question, abs=1e-5)
    assert await embedder.embed_query("What is my name?") == again  # from the cache
    assert embedder.cache.hits == 1


async def test_concurrent_callers_get_their_own_vectors(embedder: LocalEmbedder) -> None:
    texts = [f"sentence number {i} about {topic}" for i, topic in enumerate(["dogs", "tax law", "jazz"] * 4)]
    together = await asyncio.gather(*(embedder.embed([text]) for text in texts), embedder.embed(texts))
    *singles, batch = together
    for single, batched in zip(singles, batch, strict=True):
        assert single[0] == pytest.approx(batched, abs=1e-4)


async def test_a_second_embedder_in_the_process_shares_the_loaded_model(embedder: LocalEmbedder) -> None:
    second = LocalEmbedder()
    await second.start()
    await asyncio.wait_for(second.wait_ready(), timeout=2)  # no second 5 s load
    assert second.status() == "ok"
    await second.aclose()


async def test_alice_is_remembered(tmp_path: Path, embedder: LocalEmbedder) -> None:
    memory = memory_for(tmp_path / "memory", embedder)
    await memory.start()
    try:
        memory.remember(Turn("default", "chat-1", "My name is Alice", "Nice to meet you, Alice!"))
        await memory.flush()
        recall = await memory.recall("default", "chat-1", ASK_NAME)
        assert recall.turns == 1
        assert recall.message is not None and "My name is Alice" in recall.message["content"]
        assert memory.status() == "ok"
    finally:
        await memory.aclose()


async def test_a_relevant_old_turn_is_found_by_meaning(tmp_path: Path, embedder: LocalEmbedder) -> None:
    memory = memory_for(tmp_path / "memory", embedder, MEMORY_RECENT_TURNS=3, MEMORY_TOP_K=2, MEMORY_MAX_TOKENS=400)
    await memory.start()
    try:
        now = time.time() - 1000
        memory.remember(
            Turn("default", "long", "My dog is called Rex", "Rex is a great name for a dog!", timestamp=now)
        )
        topics = ["the French revolution", "sourdough bread", "black holes", "tax returns", "the Tour de France"]
        for i in range(40):
            topic = topics[i % len(topics)]
            memory.remember(
                Turn("default", "long", f"Tell me about {topic}, part {i}", f"Here is part {i} on {topic}. " * 8,
                     timestamp=now + 1 + i)
            )  # fmt: skip
        await memory.flush()
        recall = await memory.recall("default", "long", [{"role": "user", "content": "What is my dog's name?"}])
        assert recall.message is not None
        content = recall.message["content"]
        assert "My dog is called Rex" in content
        assert "part 39" in content and "part 38" in content and "part 37" in content
        assert content.index("Rex") < content.index("part 37")
        assert 4 <= recall.turns <= 5
    finally:
        await memory.aclose()


async def test_tenants_are_isolated_whatever_session_id_they_send(tmp_path: Path, embedder: LocalEmbedder) -> None:
    memory = memory_for(tmp_path / "memory", embedder)
    await memory.start()
    try:
        memory.remember(Turn("t_alice", "session-1", "My name is Alice", "Hello Alice."))
        await memory.flush()
        assert (await memory.recall("t_mallory", "session-1", ASK_NAME)).turns == 0
        assert await memory.list_turns("t_mallory", "session-1") == []
        assert await memory.delete_session("t_mallory", "session-1") == 0
        assert (await memory.recall("t_alice", "session-1", ASK_NAME)).turns == 1
    finally:
        await memory.aclose()


RECALL_IN_A_NEW_PROCESS = textwrap.dedent(
    """
    import asyncio, os, sys
    from ailb.embeddings.local import LocalEmbedder
    from ailb.memory.service import MemoryService
    from ailb.settings import load_settings

    async def main():
        embedder = LocalEmbedder()
        memory = MemoryService.from_settings(load_settings({"MEMORY_PATH": sys.argv[1]}), embedder)
        await memory.start()
        recall = await memory.recall("default", "chat-1", [{"role": "user", "content": "What is my name?"}])
        print(recall.turns, recall.message["content"] if recall.message else "")
        await memory.aclose()
        await embedder.aclose()

    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # the model, loading in the background, is not needed: do not wait for it
    """
)


async def test_memory_survives_a_process_restart(tmp_path: Path, embedder: LocalEmbedder) -> None:
    memory = memory_for(tmp_path / "memory", embedder)
    await memory.start()
    memory.remember(Turn("default", "chat-1", "My name is Alice", "Nice to meet you, Alice!"))
    await memory.aclose()  # graceful shutdown flushes the queue
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", RECALL_IN_A_NEW_PROCESS, str(tmp_path / "memory")],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1 ")
    assert "My name is Alice" in result.stdout


async def test_an_unusable_memory_path_is_a_clear_error(tmp_path: Path, embedder: LocalEmbedder) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "chroma.sqlite3").write_bytes(os.urandom(20_000))
    for path, reason in ((not_a_folder, "not a folder"), (corrupt, "cannot be opened")):
        memory = memory_for(path, embedder)
        with pytest.raises(ConfigError, match=reason) as raised:
            await memory.start()
        assert raised.value.key == "MEMORY_PATH"
        await memory.aclose()


# --- ChromaDB as a server: replicas share memory; the server going away degrades memory, never chat -----------
def replica(server: ChromaServer, model: LocalEmbedder) -> MemoryService:
    store = ChromaTurnStore(collection_name(model.name), host="127.0.0.1", port=server.port, reconnect_interval=0.2)
    return MemoryService(MemoryConfig(), store, model, cached_sessions=0, write_retries=(0.1,))


async def test_replicas_share_memory_through_a_chroma_server(
    chroma_server: ChromaServer, embedder: LocalEmbedder
) -> None:
    first, second = replica(chroma_server, embedder), replica(chroma_server, embedder)
    await first.start()
    await second.start()
    try:
        first.remember(Turn("default", "chat-1", "My name is Alice", "Nice to meet you, Alice!"))
        await first.flush()
        recall = await second.recall("default", "chat-1", ASK_NAME)
        assert recall.message is not None and "Alice" in recall.message["content"]
        second.remember(Turn("default", "chat-1", "I live in Lyon", "Lyon is a lovely city."))
        await second.flush()
        assert (await first.recall("default", "chat-1", ASK_NAME)).turns == 2
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_dead_chroma_server_degrades_memory_until_it_returns(
    chroma_server: ChromaServer, embedder: LocalEmbedder
) -> None:
    memory = replica(chroma_server, embedder)
    await memory.start()
    try:
        memory.remember(Turn("default", "chat-1", "My name is Alice", "Nice to meet you, Alice!"))
        await memory.flush()
        chroma_server.stop()
        assert (await memory.recall("default", "chat-1", ASK_NAME)).turns == 0
        assert memory.status() == "degraded"
        memory.remember(Turn("default", "chat-1", "lost", "this write fails"))
        await memory.flush()
        assert memory.failures["recall"] == 1 and memory.failures["store"] == 2  # tried twice, then dropped
        chroma_server.start()
        for _ in range(100):  # the maintenance task probes the store every second
            if memory.status() == "ok":
                break
            await asyncio.sleep(0.1)
        recall = await memory.recall("default", "chat-1", ASK_NAME)
        assert recall.message is not None and "Alice" in recall.message["content"]
        assert memory.status() == "ok"
    finally:
        await memory.aclose()


async def test_a_chroma_server_down_at_start_up_is_degraded_not_fatal(tmp_path: Path, embedder: LocalEmbedder) -> None:
    server = ChromaServer(tmp_path / "never-started")
    memory = replica(server, embedder)
    await memory.start()
    try:
        assert memory.status() == "degraded"
        assert (await memory.recall("default", "chat-1", ASK_NAME)).turns == 0
    finally:
        await memory.aclose()
