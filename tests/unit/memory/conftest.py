from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest_asyncio

from ailb.memory.inmemory import InMemoryTurnStore
from ailb.memory.models import SessionView, StoredTurn
from ailb.memory.service import MemoryService
from ailb.memory.store import MemoryStoreError
from ailb.settings import MemoryConfig
from tests.unit.word_embedder import WordEmbedder


class KeywordEmbedder(WordEmbedder):
    """The shared test embedder with the memory tests' vocabulary: 128 dimensions, 256 tokens a text."""

    name = "test:keywords"
    dimensions = 128
    max_tokens = 256
    stop_words = frozenset("a an and are at be by do for how i in is it me my of on the to was what you your".split())


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


class InstrumentedStore(InMemoryTurnStore):
    """The in-memory store, counting its calls and able to fail like a store whose disk or server went away
    (``broken``) or to hang like one that never answers (``silent``, session views only)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.broken = False
        self.silent = False

    def _enter(self, operation: str) -> None:
        self.calls[operation] += 1
        if self.broken:
            raise MemoryStoreError("disk is gone")

    async def load_view(self, tenant: str, session_id: str, keep_recent: int, complete_limit: int) -> SessionView:
        self._enter("load_view")
        if self.silent:
            await asyncio.sleep(30)
        return await super().load_view(tenant, session_id, keep_recent, complete_limit)

    async def add(self, turns: Any, embeddings: Any, dimensions: int) -> None:
        self._enter("add")
        await super().add(turns, embeddings, dimensions)

    async def similar(self, tenant: str, session_id: str, embedding: Any, limit: int) -> Any:
        self._enter("similar")
        return await super().similar(tenant, session_id, embedding, limit)

    async def embedded_turns(self, tenant: str, session_id: str) -> Any:
        self._enter("embedded_turns")
        return await super().embedded_turns(tenant, session_id)

    async def session_tokens(self, tenant: str, session_id: str) -> int:
        self._enter("session_tokens")
        return await super().session_tokens(tenant, session_id)

    async def unembedded(self, tenant: str, session_id: str) -> list[StoredTurn]:
        self._enter("unembedded")
        return await super().unembedded(tenant, session_id)

    async def list_turns(self, tenant: str, session_id: str) -> list[StoredTurn]:
        self._enter("list_turns")
        return await super().list_turns(tenant, session_id)

    async def delete_session(self, tenant: str, session_id: str) -> list[str]:
        self._enter("delete_session")
        return await super().delete_session(tenant, session_id)

    async def delete_older_than(self, cutoff: float) -> int:
        self._enter("delete_older_than")
        return await super().delete_older_than(cutoff)

    async def ping(self) -> None:
        self._enter("ping")


MemoryFactory = Callable[..., Any]


@pytest_asyncio.fixture
async def make_memory() -> AsyncIterator[MemoryFactory]:
    """``await make_memory(embedder=..., store=..., **config)`` → a started MemoryService on an in-memory store
    (unless ``store`` is given); closed after the test."""
    services: list[MemoryService] = []

    async def make(
        embedder: Any = None,
        store: Any = None,
        observer: Any = None,
        cached_sessions: int = 64,
        write_retries: tuple[float, ...] = (),
        clock: Callable[[], float] = time.time,
        **config: Any,
    ) -> MemoryService:
        store = store or InMemoryTurnStore()
        service = MemoryService(
            MemoryConfig(**config),
            store,
            embedder or KeywordEmbedder(),
            observer=observer,
            cached_sessions=cached_sessions,
            write_linger=0,
            write_retries=write_retries,
            clock=clock,
        )
        await service.start()
        services.append(service)
        return service

    yield make
    for service in services:
        await service.aclose(flush_seconds=5)
