from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest_asyncio

from ailb.embeddings.base import EmbeddingError
from ailb.memory.chroma_store import ChromaTurnStore
from ailb.memory.service import MemoryService
from ailb.settings import MemoryConfig

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("a an and are at be by do for how i in is it me my of on the to was what you your".split())


class KeywordEmbedder:
    """A deterministic stand-in for the model in unit tests: hashed bag of content words, unit length."""

    name = "test:keywords"
    dimensions = 128
    max_tokens = 256

    def __init__(self, ready: bool = True) -> None:
        self._ready = asyncio.Event()
        if ready:
            self._ready.set()
        self.failing = False
        self.gate: asyncio.Event | None = None  # when set, embedding waits for it
        self.waiting = asyncio.Event()  # set while an embed call waits for the gate
        self.embedded: list[str] = []
        self.queries: list[str] = []

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def status(self) -> str:
        return "ok" if self.ready else "loading"

    def set_ready(self) -> None:
        self._ready.set()

    def hold(self) -> None:
        """Look unloaded again, so the writer waits."""
        self._ready.clear()

    async def start(self) -> None:
        return None

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self.gate is not None:
            self.waiting.set()
            await self.gate.wait()
        if self.failing:
            raise EmbeddingError("the test model is failing")
        self.embedded.extend(texts)
        return [self._vector(text) for text in texts]

    async def embed_query(self, text: str) -> list[float]:
        self.queries.append(text)
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


class RecordingObserver:
    def __init__(self) -> None:
        self.recalls = 0
        self.stores = 0
        self.failed: list[str] = []
        self.dropped = 0

    def memory_recalled(self, seconds: float) -> None:
        self.recalls += 1

    def memory_stored(self, seconds: float) -> None:
        self.stores += 1

    def memory_failed(self, operation: str) -> None:
        self.failed.append(operation)

    def memory_dropped_turn(self) -> None:
        self.dropped += 1


MemoryFactory = Callable[..., Any]


async def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not become true in time")


@pytest_asyncio.fixture
async def make_memory(tmp_path: Path) -> AsyncIterator[MemoryFactory]:
    """``await make_memory(embedder=..., store=..., **config)`` → a started MemoryService; closed after the test."""
    services: list[MemoryService] = []

    async def make(
        embedder: Any = None,
        store: Any = None,
        observer: Any = None,
        cached_sessions: int = 64,
        write_retries: tuple[float, ...] = (),
        **config: Any,
    ) -> MemoryService:
        store = store or ChromaTurnStore("ailb-memory-unit", path=str(tmp_path / "memory"), worker_process=False)
        service = MemoryService(
            MemoryConfig(**config),
            store,
            embedder or KeywordEmbedder(),
            observer=observer,
            cached_sessions=cached_sessions,
            write_linger=0,
            write_retries=write_retries,
        )
        await service.start()
        services.append(service)
        return service

    yield make
    for service in services:
        await service.aclose(flush_seconds=5)
