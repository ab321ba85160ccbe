"""``python -m bench.bench_rag``: knowledge-base ingestion throughput and retrieval latency, in one process.

With the real packaged MiniLM and a real ChromaDB folder:

- ingestion of a collection of ``--chunks`` chunks (default 10,000): parse-free documents → chunks → vectors →
  store, in chunks/s, and the store's share (writing pre-computed vectors);
- retrieval on the chat path (``RagService.retrieve``: query embedding, ChromaDB query, reference block) for new
  questions and for a repeated one (its embedding cached), p50/p99;
- the ChromaDB query alone, p50/p99;
- retrieval latency and event-loop lag while a large ingest runs (ingestion must not block serving).

``--during-ingest-only N`` measures only retrieval from a ``--chunks`` collection, idle and while N chunks are
ingested, and prints JSON (``bench.memory_rag`` runs it pinned to the server's CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path

from ailb.embeddings.local import LocalEmbedder
from ailb.rag.chroma_store import ChromaVectorStore
from ailb.rag.models import DocumentInput, StoredChunk
from ailb.rag.service import RagService
from ailb.settings import RagConfig
from bench.measure import loop_lag, percentile_line, timed

TOPICS = [
    "vacation", "expenses", "security", "onboarding", "benefits", "travel", "payroll", "parking", "hardware",
    "training", "recruiting", "compliance", "procurement", "facilities", "privacy", "insurance",
]  # fmt: skip
VERBS = ["requires", "allows", "limits", "covers", "excludes", "schedules", "reviews", "approves", "records"]
OBJECTS = [
    "a written request", "the manager's approval", "receipts above 25 dollars", "two weeks of notice",
    "a yearly review", "the regional office", "the finance team", "an external auditor", "the HR portal",
    "a signed agreement", "a quarterly report", "the security team",
]  # fmt: skip
PARAGRAPHS_PER_DOCUMENT = 10


def _paragraph(rng: random.Random, topic: str, doc: int, n: int) -> str:
    """About 150 tokens, so that each paragraph becomes one chunk."""
    sentences = [
        f"Rule {doc}.{n}.{k} of the {topic} policy {rng.choice(VERBS)} {rng.choice(OBJECTS)} "
        f"for case {rng.randint(1, 10_000)} in {rng.choice(TOPICS)} matters within {rng.randint(2, 90)} days."
        for k in range(7)
    ]
    return " ".join(sentences)


def _documents(chunks: int, seed: int = 7) -> list[DocumentInput]:
    rng = random.Random(seed)
    documents = []
    for doc in range(max(1, chunks // PARAGRAPHS_PER_DOCUMENT)):
        topic = TOPICS[doc % len(TOPICS)]
        text = "\n\n".join(_paragraph(rng, topic, doc, n) for n in range(PARAGRAPHS_PER_DOCUMENT))
        documents.append(DocumentInput(f"{topic}/doc-{doc}", text, title=f"{topic.title()} policy {doc}"))
    return documents


def _figures(samples: list[float]) -> str:
    return percentile_line(samples, 2, with_max=True)


def _question(i: int) -> list[dict[str, str]]:
    topic = TOPICS[i % len(TOPICS)]
    return [{"role": "user", "content": f"What does the {topic} policy require for case {i * 37 % 10_000}?"}]


async def main(chunks: int, requests: int, folder: Path) -> None:
    embedder = LocalEmbedder()
    started = time.perf_counter()
    await embedder.wait_ready()
    print(f"model load                                     {time.perf_counter() - started:8.2f} s")

    store = ChromaVectorStore(path=str(folder / "rag"))
    rag = RagService(RagConfig(enabled=True), store, embedder)
    await rag.start()
    await rag.create_collection("bench-kb", "synthetic policies")
    documents = _documents(chunks)
    started = time.perf_counter()
    result = await rag.ingest("bench-kb", documents)
    elapsed = time.perf_counter() - started
    print(f"ingest {len(documents)} documents = {result.chunks} chunks      {elapsed:8.2f} s   "
          f"{result.chunks / elapsed:8.1f} chunks/s (chunk + embed + write)")  # fmt: skip

    await rag.create_collection("bench-store", "")
    vectors = await embedder.embed([f"vector {i}" for i in range(64)])
    stored = [StoredChunk(f"d{i}", 0, f"text {i}", vectors[i % 64], "", "", {}) for i in range(min(chunks, 5000))]
    started = time.perf_counter()
    for i in range(0, len(stored), 256):
        await store.write_chunks("bench-store", stored[i : i + 256])
    elapsed = time.perf_counter() - started
    print(f"store writes alone (pre-computed vectors)     {len(stored) / elapsed:8.1f} chunks/s")

    retrieve = rag.retrieve
    await retrieve(("bench-kb",), _question(0), 3)
    samples = await timed(requests, lambda i: retrieve(("bench-kb",), _question(i + 1), 3))
    print(f"retrieve, {result.chunks} chunks, new questions       ", _figures(samples))
    samples = await timed(requests, lambda i: retrieve(("bench-kb",), _question(0), 3))
    print(f"retrieve, {result.chunks} chunks, repeated question   ", _figures(samples))
    vector = await embedder.embed_query("What does the travel policy require?")
    samples = await timed(requests, lambda i: store.query("bench-kb", vector, 3))
    print("store query alone (top 3, in the worker)     ", _figures(samples))

    busy = await during_ingest(rag, min(chunks, 2000), min(requests, 50))
    print("event-loop lag, idle                         ", _figures(busy["lag_idle"]))
    print("event-loop lag during an ingest              ", _figures(busy["lag_busy"]))
    print("retrieve during an ingest, new questions     ", _figures(busy["retrieve_busy"]))
    await rag.aclose()
    await embedder.aclose()


async def during_ingest(rag: RagService, chunks: int, requests: int) -> dict[str, list[float]]:
    """Event-loop lag idle and during an ingest of ``chunks`` chunks, and retrieval from ``bench-kb`` meanwhile."""
    idle = await loop_lag(1.0, 0.005)
    await rag.create_collection("bench-busy", "")
    ingest = asyncio.create_task(rag.ingest("bench-busy", _documents(chunks, seed=11)))
    await asyncio.sleep(0.5)
    busy = await loop_lag(5.0, 0.005)
    retrieve = rag.retrieve
    during = await timed(requests, lambda i: retrieve(("bench-kb",), _question(i + 5000), 3))
    still_running = not ingest.done()
    await ingest
    if not still_running:
        raise RuntimeError(f"the ingest of {chunks} chunks ended before the retrievals did: give it more chunks")
    return {"lag_idle": idle, "lag_busy": busy, "retrieve_busy": during}


async def retrieval_during_ingest(chunks: int, busy_chunks: int, requests: int, folder: Path) -> dict[str, float]:
    """The knowledge-base row of ``bench.memory_rag``: a small collection to query, then retrieval p50/p99 (ms)
    idle and while an ingest runs."""
    embedder = LocalEmbedder()
    await embedder.wait_ready()
    rag = RagService(RagConfig(enabled=True), ChromaVectorStore(path=str(folder / "rag")), embedder)
    await rag.start()
    await rag.create_collection("bench-kb", "synthetic policies")
    await rag.ingest("bench-kb", _documents(chunks))
    retrieve = rag.retrieve
    await retrieve(("bench-kb",), _question(0), 3)
    idle = await timed(requests, lambda i: retrieve(("bench-kb",), _question(i + 1), 3))
    busy = await during_ingest(rag, busy_chunks, requests)
    await rag.aclose()
    await embedder.aclose()
    figures = {"retrieve_idle": idle, **busy}
    return {f"{name}_{q}": _ms(samples, q) for name, samples in figures.items() for q in ("p50", "p99")}


def _ms(samples: list[float], which: str) -> float:
    ordered = sorted(samples)
    rank = 0.5 if which == "p50" else 0.99
    return ordered[min(len(ordered) - 1, round(rank * (len(ordered) - 1)))] * 1000


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=10_000, help="chunks in the measured collection")
    parser.add_argument("--requests", type=int, default=200, help="samples per latency figure")
    parser.add_argument(
        "--during-ingest-only",
        type=int,
        metavar="BUSY_CHUNKS",
        help="only retrieval (idle, and during an ingest of BUSY_CHUNKS chunks), as JSON: for bench.memory_rag",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.during_ingest_only:
            work = retrieval_during_ingest(args.chunks, args.during_ingest_only, args.requests, Path(tmp))
            print(json.dumps(asyncio.run(work)))
        else:
            asyncio.run(main(args.chunks, args.requests, Path(tmp)))
