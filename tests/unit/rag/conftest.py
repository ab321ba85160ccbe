from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ailb.rag.chroma import ChromaCollections
from ailb.rag.service import RagService
from ailb.rag.store import RagStore
from ailb.settings import RagConfig
from tests.unit.word_embedder import WordEmbedder


class RecordingMetrics:
    def __init__(self) -> None:
        self.retrievals: list[float] = []
        self.failures: list[str] = []
        self.ingested = 0

    def rag_retrieved(self, seconds: float) -> None:
        self.retrievals.append(seconds)

    def rag_failed(self, operation: str) -> None:
        self.failures.append(operation)

    def rag_ingested(self, chunks: int) -> None:
        self.ingested += chunks


@pytest.fixture
def embedder() -> WordEmbedder:
    return WordEmbedder()


@pytest.fixture
def metrics() -> RecordingMetrics:
    return RecordingMetrics()


@pytest.fixture
def collections(tmp_path: Path) -> ChromaCollections:
    """The blocking ChromaDB layer itself."""
    collections = ChromaCollections(path=str(tmp_path / "rag"))
    collections.connect()
    return collections


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[RagStore]:
    """The awaitable store on threads (the worker-process mode has tests of its own)."""
    store = RagStore(path=str(tmp_path / "rag"), worker_process=False)
    yield store
    await store.aclose()


@pytest_asyncio.fixture
async def service(store: RagStore, embedder: WordEmbedder, metrics: RecordingMetrics) -> AsyncIterator[RagService]:
    config = RagConfig(enabled=True, chunk_tokens=40, chunk_overlap=8, min_score=0.2)
    rag = RagService(
        config, store, embedder, allowed={"t_limited": frozenset({"policies"})}, metrics=metrics, batch_size=4
    )
    await rag.start()
    yield rag
    await rag.aclose()
