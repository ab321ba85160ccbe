"""A deterministic stand-in for the embedding model in unit tests (memory and RAG).

Vectors are a hashed (md5) bag of content words, unit length; tokens are words (+2). Subclasses may change
``name``, ``dimensions``, ``max_tokens`` and ``stop_words``.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import Sequence

from ailb.embeddings.base import EmbeddingError

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("a an and are at be by for from how i in is it my of on or our the to we what when who with".split())


class WordEmbedder:
    """Test hooks: ``failing`` (embedding raises), ``gate`` (when set, embedding waits for it) with ``waiting``
    (set while an embed call waits for the gate), ``embedded`` (every text embedded), ``queries`` (every query, cut to
    its window), ``calls`` (the batch size of each embed call), and ``set_ready``/``hold`` to look loaded or not."""

    name = "test:words"
    dimensions = 256
    max_tokens = 64
    stop_words: frozenset[str] = _STOP

    def __init__(self, max_tokens: int | None = None, ready: bool = True) -> None:
        if max_tokens is not None:
            self.max_tokens = max_tokens
        self._ready = asyncio.Event()
        if ready:
            self._ready.set()
        self.failing = False
        self.gate: asyncio.Event | None = None
        self.waiting = asyncio.Event()
        self.embedded: list[str] = []
        self.queries: list[str] = []
        self.calls: list[int] = []

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def status(self) -> str:
        return "ok" if self.ready else "loading"

    def set_ready(self) -> None:
        self._ready.set()

    def hold(self) -> None:
        """Look unloaded again, so whoever waits for the model waits."""
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
        self.calls.append(len(texts))
        return [self._vector(text) for text in texts]

    async def embed_query(self, text: str, max_tokens: int | None = None) -> list[float]:
        if max_tokens is not None:
            text = " ".join(text.split()[:max_tokens])
        self.queries.append(text)
        return (await self.embed([text]))[0]

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2

    async def aclose(self) -> None:
        return None

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        for word in _WORD.findall(text.lower()):
            if word not in self.stop_words:
                vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimensions] += 1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]
