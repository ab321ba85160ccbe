"""``python -m bench.memory_layer``: what conversation memory costs inside one process, piece by piece.

The end-to-end figure (a memory-enabled request against a plain one, over HTTP) is the ``ailb-memory`` target
of ``bench.run``; this breaks that cost down with the real model and a real ChromaDB folder:

- loading the packaged MiniLM;
- ``recall`` of a short session whose view is cached (the common case: no store call, no embedding);
- ``recall`` of a short session read from ChromaDB (first request after a restart);
- ``recall`` of a long session (a query embedding plus a filtered ChromaDB query), new and repeated questions;
- ``remember`` (the enqueue on the request path);
- event-loop lag (how late a 1 ms timer fires) while the background writer stores a burst of turns, and
  the recall of a long session meanwhile (its query embedding must not wait behind the turns' embeddings).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

from ailb.embeddings.local import LocalEmbedder
from ailb.memory.chroma_store import ChromaTurnStore, collection_name
from ailb.memory.service import MemoryService, Turn
from ailb.settings import load_settings
from bench.measure import loop_lag, percentile_line, timed

TENANT = "bench"
TOPICS = ["gardening", "tax returns", "jazz", "black holes", "sourdough", "cycling", "Roman history", "chess"]


def _turn(session: str, index: int, now: float) -> Turn:
    topic = TOPICS[index % len(TOPICS)]
    return Turn(
        TENANT,
        session,
        f"Question {index}: tell me something about {topic}.",
        f"Answer {index}: here are a few sentences about {topic}. " * 4,
        model="bench-model",
        timestamp=now + index * 0.001,
    )


def _figures(samples: list[float]) -> str:
    return percentile_line(samples, 3)


async def main(turns: int, requests: int, folder: Path) -> None:
    embedder = LocalEmbedder()
    started = time.perf_counter()
    await embedder.start()
    await embedder.wait_ready()
    print(f"model load (background, once per process)     {time.perf_counter() - started:8.2f} s")

    settings = load_settings({"MEMORY_PATH": str(folder)})
    store = ChromaTurnStore(collection_name(embedder.name), path=str(folder))
    memory = MemoryService(settings.memory, store, embedder, write_linger=0)  # per-turn cost, not batching delay
    await memory.start()
    now = time.time() - 86400
    short_sessions = max(1, (turns // 2) // 3)
    started = time.perf_counter()
    for s in range(short_sessions):
        for i in range(3):
            memory.remember(_turn(f"short-{s}", i, now))
    await memory.flush()
    per_turn = (time.perf_counter() - started) / (short_sessions * 3)
    print(f"store a turn of a short session (no embedding) {per_turn * 1000:8.3f} ms  (background)")
    long_turns = turns - short_sessions * 3
    started = time.perf_counter()
    for i in range(long_turns):
        memory.remember(_turn("long", i, now))
    await memory.flush()
    per_turn = (time.perf_counter() - started) / long_turns
    print(f"store a turn of a long session (embedded)      {per_turn * 1000:8.3f} ms  (background)")

    ask = [{"role": "user", "content": "What did you say about jazz?"}]
    recall = memory.recall
    await recall(TENANT, "short-0", ask)
    print(
        "recall, short session, cached view          ",
        _figures(await timed(requests, lambda i: recall(TENANT, "short-0", ask))),
    )

    # The same open store without a session cache: an embedded folder is open in one process at a time.
    cold = MemoryService(settings.memory, store, embedder, cached_sessions=0)
    sessions = min(requests, short_sessions)
    samples = await timed(sessions, lambda i: cold.recall(TENANT, f"short-{i}", ask))
    print("recall, short session, read from ChromaDB   ", _figures(samples))

    def fresh_question(i: int) -> Awaitable[object]:
        return recall(TENANT, "long", [{"role": "user", "content": f"What did you say about {TOPICS[i % 8]} ({i})?"}])

    print("recall, long session, new question          ", _figures(await timed(requests, fresh_question)))
    print(
        "recall, long session, repeated question     ",
        _figures(await timed(requests, lambda i: recall(TENANT, "long", ask))),
    )

    async def remember(i: int) -> None:
        memory.remember(_turn("burst", i, now))

    remember_samples = await timed(requests, remember)
    print("remember (enqueue on the request path)      ", _figures(remember_samples))

    await memory.flush()
    print("event-loop lag, idle                        ", _figures(await loop_lag(1.0, 0.001)))
    for s in range(200):
        memory.remember(_turn(f"burst-short-{s}", 0, time.time()))
    print("event-loop lag, short turns being written   ", _figures(await loop_lag(1.0, 0.001)))
    await memory.flush()
    for i in range(400):
        memory.remember(_turn("burst-long", i, time.time()))
    print("event-loop lag, long-session turns embedding", _figures(await loop_lag(1.0, 0.001)))
    busy = await timed(min(requests, 50), lambda i: fresh_question(i + 10_000))
    print("recall, long session, new question, while   ", _figures(busy))
    print(f"  the writer embeds turns ({memory.stats()['queued']} still queued after)")
    await memory.aclose()
    await embedder.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=2000, help="turns stored before measuring")
    parser.add_argument("--requests", type=int, default=300, help="samples per figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(args.turns, args.requests, Path(tmp)))
