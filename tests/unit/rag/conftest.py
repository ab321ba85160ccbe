from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ailb.rag.inmemory import InMemoryVectorStore
from ailb.rag.service import RagService
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
def store() -> InMemoryVectorStore:
    """The in-memory store: RagService's logic needs no ChromaDB (the contract suite checks both stores)."""
    return InMemoryVectorStore()


@pytest_asyncio.fixture
async def service(
    store: InMemoryVectorStore, embedder: WordEmbedder, metrics: RecordingMetrics
) -> AsyncIterator[RagService]:
    config = RagConfig(enabled=True, chunk_tokens=40, chunk_overlap=8, min_score=0.2)
    rag = RagService(config, store, embedder, metrics=metrics, batch_size=4)
    await rag.start()
    yield rag
    await rag.aclose()
