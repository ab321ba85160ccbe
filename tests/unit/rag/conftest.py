from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import pytest_asyncio

from ailb.embeddings.base import EmbeddingError
from ailb.rag.chroma import ChromaCollections
from ailb.rag.service import RagService
from ailb.rag.store import RagStore
from ailb.settings import RagConfig

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("a an and are at be by for from how i in is it my of on or our the to we what when who with".split())


class WordEmbedder:
    """A deterministic stand-in for the model: hashed bag of words, unit length; tokens are words (+2)."""

    name = "test:words"
    dimensions = 256

    def __init__(self, max_tokens: int = 64, ready: bool = True) -> None:
        self.max_tokens = max_tokens
        self._ready = asyncio.Event()
        if ready:
            self._ready.set()
        self.failing = False
        self.calls: list[int] = []

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def status(self) -> str:
        return "ok" if self.ready else "loading"

    def set_ready(self) -> None:
        self._ready.set()

    async def start(self) -> None:
        return None

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self.failing:
            raise EmbeddingError("model crashed")
        self.calls.append(len(texts))
        return [self._vector(text) for text in texts]

    async def embed_query(self, text: str) -> list[float]:
        return (await self.embed([text]))[0]

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2

    async def aclose(self) -> None:
        return None

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        for word in _WORD.findall(text.lower()):
            if word not in _STOP:
                vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimensions] += 1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]


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
