"""all-MiniLM-L6-v2 run in-process from an installed model package; never downloaded.

The model loads once, in the background, on a dedicated daemon thread; every encode runs on that same
thread, so concurrent callers are coalesced into batches instead of competing for the CPU. Search queries
(``embed_query``) go ahead of bulk work: bulk texts are encoded ``batch_size`` at a time, so a query waits for
at most one such batch. The model runs on ONNX Runtime unless ``runtime="torch"`` (see ``models.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from tokenizers import Tokenizer

from ailb.embeddings.base import EmbeddingError
from ailb.embeddings.cache import VectorCache
from ailb.embeddings.daemon_thread import DaemonThreadExecutor
from ailb.embeddings.encoders import Encoder, Vectors, shared_encoder
from ailb.embeddings.models import DEFAULT_MODEL, resolve_model

log = logging.getLogger("ailb.embeddings")

_Batch = list[tuple[list[str], asyncio.Future[list[list[float]]]]]


class LocalEmbedder:
    """A local embedding model on the CPU. Load it once per process and share it (memory and RAG)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        runtime: str = "onnx",
        batch_size: int = 4,
        threads: int = 1,
        cache_size: int = 1024,
    ) -> None:
        self.spec = resolve_model(model, runtime)
        self.path = self.spec.path
        self.name = self.spec.name
        self.dimensions = self.spec.dimensions
        self.max_tokens = self.spec.max_tokens
        self.batch_size = batch_size
        self.threads = threads
        self.cache = VectorCache(cache_size)
        self._tokenizer = _load_tokenizer(self.spec.tokenizer)
        self._executor = DaemonThreadExecutor("ailb-embed")
        self._model: Encoder | None = None
        self._loading: asyncio.Future[None] | None = None
        self._urgent: _Batch = []
        self._bulk: _Batch = []
        self._drainer: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def ready(self) -> bool:
        return self._model is not None

    def status(self) -> str:
        if self._model is not None:
            return "ok"
        loading = self._loading
        failed = loading is not None and loading.done() and (loading.cancelled() or loading.exception() is not None)
        return "failed" if failed else "loading"

    async def start(self) -> None:
        if self._loading is None:
            self._loading = asyncio.get_running_loop().run_in_executor(self._executor, self._load_model)
            self._loading.add_done_callback(_log_load_failure)

    async def wait_ready(self) -> None:
        if self._model is not None:
            return
        await self.start()
        assert self._loading is not None
        try:
            await asyncio.shield(self._loading)
        except Exception as exc:
            raise EmbeddingError(f"The embedding model {self.name} could not be loaded.") from exc

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            vectors.extend(await self._submit(list(texts[start : start + self.batch_size]), self._bulk))
        return vectors

    async def embed_query(self, text: str) -> list[float]:
        cached = self.cache.get(text)
        if cached is not None:
            return cached
        vector = (await self._submit([text], self._urgent))[0]
        self.cache.put(text, vector)
        return vector

    def count_tokens(self, text: str) -> int:
        """Tokens including the [CLS]/[SEP] pair, so ``count_tokens(t) <= max_tokens`` means no truncation."""
        return len(self._tokenizer.encode(text).ids)

    async def aclose(self) -> None:
        self._closed = True
        if self._drainer is not None:
            self._drainer.cancel()
        for _, future in self._urgent + self._bulk:
            if not future.done():
                future.set_exception(EmbeddingError("The embedding model has been shut down."))
        self._urgent, self._bulk = [], []
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _submit(self, texts: list[str], lane: _Batch) -> list[list[float]]:
        if not texts:
            return []
        if self._closed:
            raise EmbeddingError("The embedding model has been shut down.")
        await self.wait_ready()
        future: asyncio.Future[list[list[float]]] = asyncio.get_running_loop().create_future()
        lane.append((texts, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    def _next_batch(self) -> _Batch:
        """Every waiting query, else bulk requests up to ``batch_size`` texts."""
        if self._urgent:
            batch, self._urgent = self._urgent, []
            return batch
        size = 0
        taken = 0
        while taken < len(self._bulk) and (taken == 0 or size + len(self._bulk[taken][0]) <= self.batch_size):
            size += len(self._bulk[taken][0])
            taken += 1
        batch, self._bulk = self._bulk[:taken], self._bulk[taken:]
        return batch

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._urgent or self._bulk:
            batch = self._next_batch()
            texts = [text for request, _ in batch for text in request]
            try:
                vectors = await loop.run_in_executor(self._executor, self._encode, texts)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(EmbeddingError(f"Embedding with {self.name} failed: {exc}"))
                continue
            start = 0
            for request, future in batch:
                end = start + len(request)
                if not future.done():
                    future.set_result(vectors[start:end].tolist())
                start = end

    def _load_model(self) -> None:
        model = shared_encoder(self.spec, self.threads)
        self.dimensions = model.dimensions or self.dimensions
        self.max_tokens = model.max_tokens or self.max_tokens
        self._model = model

    def _encode(self, texts: list[str]) -> Vectors:
        assert self._model is not None
        return self._model.encode(texts)


def _load_tokenizer(path: Path) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _log_load_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("the embedding model could not be loaded: %s", future.exception())
