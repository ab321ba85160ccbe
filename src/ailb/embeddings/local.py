"""all-MiniLM-L6-v2 run in-process from an installed model package; never downloaded.

The model loads once, in the background, on a daemon thread. It then runs on two lanes (``lanes.py``), each
a thread of its own: search queries (``embed_query``) on one, bulk work (``embed``: ingestion, memory turns) on
the other at a lower OS priority, so a query never waits behind bulk embedding. Each lane batches what
arrives while it is busy. The model runs on ONNX Runtime unless ``runtime="torch"`` (see ``models.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

from tokenizers import Tokenizer

from ailb.embeddings.base import EmbeddingError
from ailb.embeddings.cache import VectorCache
from ailb.embeddings.daemon_thread import DaemonThreadExecutor
from ailb.embeddings.encoders import Encoder, shared_encoder
from ailb.embeddings.lanes import (
    BULK_BATCH_TOKENS,
    BULK_NICENESS,
    QUERY_BATCH_TOKENS,
    QUERY_NEWEST_FIRST_AFTER,
    Cut,
    EncoderLane,
    LaneClosed,
    Measure,
)
from ailb.embeddings.models import DEFAULT_MODEL, resolve_model
from ailb.embeddings.native_work import native_call

log = logging.getLogger("ailb.embeddings")

CHARS_PER_TOKEN = (6, 16)  # a text is tokenized this far (per token of the window) before it is cut: usually
# the first is enough, and no token is longer than the second


class LocalEmbedder:
    """A local embedding model on the CPU. Load it once per process and share it (memory and RAG)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        runtime: str = "onnx",
        threads: int = 1,
        cache_size: int = 1024,
        query_batch_tokens: int = QUERY_BATCH_TOKENS,
        bulk_batch_tokens: int = BULK_BATCH_TOKENS,
        bulk_niceness: int = BULK_NICENESS,
    ) -> None:
        self.spec = resolve_model(model, runtime)
        self.path = self.spec.path
        self.name = self.spec.name
        self.dimensions = self.spec.dimensions
        self.max_tokens = self.spec.max_tokens
        self.threads = threads  # intra-op threads per encode; each lane runs one encode at a time
        self.query_batch_tokens = query_batch_tokens
        self.bulk_batch_tokens = bulk_batch_tokens
        self.bulk_niceness = bulk_niceness
        self.cache = VectorCache(cache_size)  # (query text, window) → vector: a repeated query needs no thread
        self.token_cache = VectorCache(cache_size)  # token ids → vector, filled by queries, read by both lanes
        self._tokenizer = _load_tokenizer(self.spec.tokenizer)
        self._executor = DaemonThreadExecutor("ailb-embed-load")
        self._model: Encoder | None = None
        self._loading: asyncio.Future[None] | None = None
        self._query_lane: EncoderLane | None = None
        self._bulk_lane: EncoderLane | None = None
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
        if not texts:
            return []
        await self._ready_to_encode()
        assert self._bulk_lane is not None
        return await self._encoded(self._bulk_lane, texts)

    async def embed_query(self, text: str, max_tokens: int | None = None) -> list[float]:
        window = max_tokens if max_tokens is not None and max_tokens + 2 < self.max_tokens else None
        key = (text, window)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        await self._ready_to_encode()
        assert self._query_lane is not None
        vector = (await self._encoded(self._query_lane, [text], window))[0]
        self.cache.put(key, vector)
        return vector

    def count_tokens(self, text: str) -> int:
        """Tokens including the [CLS]/[SEP] pair, so ``count_tokens(t) <= max_tokens`` means no truncation."""
        return len(self._tokenizer.encode(text).ids)

    async def aclose(self) -> None:
        self._closed = True
        for lane in (self._query_lane, self._bulk_lane):
            if lane is not None:
                lane.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _ready_to_encode(self) -> None:
        if self._closed:
            raise EmbeddingError("The embedding model has been shut down.")
        await self.wait_ready()

    async def _encoded(self, lane: EncoderLane, texts: Sequence[str], window: int | None = None) -> list[list[float]]:
        try:
            future: Future[list[list[float]]] = lane.submit(texts, window)
            return await asyncio.wrap_future(future)
        except LaneClosed:
            raise EmbeddingError("The embedding model has been shut down.") from None
        except Exception as exc:
            raise EmbeddingError(f"Embedding with {self.name} failed: {exc}") from exc

    def _load_model(self) -> None:
        with native_call():
            model = shared_encoder(self.spec, self.threads)
        self.dimensions = model.dimensions or self.dimensions
        self.max_tokens = model.max_tokens or self.max_tokens
        self._query_lane = EncoderLane(
            "ailb-embed-query", model.encode, self._measurer(), self.token_cache,
            batch_tokens=self.query_batch_tokens, cut=self._cutter(), fills_cache=True,
            newest_first_after=QUERY_NEWEST_FIRST_AFTER,
        )  # fmt: skip
        self._bulk_lane = EncoderLane(
            "ailb-embed-bulk", model.encode, self._measurer(), self.token_cache,
            batch_tokens=self.bulk_batch_tokens, niceness=self.bulk_niceness,
        )  # fmt: skip
        self._model = model

    def _measurer(self) -> Measure:
        """Token ids as the model sees them (truncated to its window); one tokenizer per lane thread."""
        tokenizer = _load_tokenizer(self.spec.tokenizer)
        tokenizer.enable_truncation(self.max_tokens)
        return lambda texts: [encoding.ids for encoding in tokenizer.encode_batch(texts)]

    def _cutter(self) -> Cut:
        """``leading_tokens`` with a tokenizer of the lane's own."""
        tokenizer = _load_tokenizer(self.spec.tokenizer)
        return lambda text, tokens: leading_tokens(tokenizer, text, tokens)


def leading_tokens(tokenizer: Tokenizer, text: str, tokens: int) -> str:
    """The start of ``text`` that ``tokenizer`` turns into at most ``tokens`` tokens (besides [CLS] and [SEP]),
    ending where a token ends: ``text`` itself when it is that short."""
    if tokens <= 0:
        return ""
    for chars in CHARS_PER_TOKEN:
        head = text[: tokens * chars]
        offsets = tokenizer.encode(head, add_special_tokens=False).offsets
        if len(offsets) > tokens:
            return head[: offsets[tokens - 1][1]]
        if len(head) == len(text):
            return text
    return head


def _load_tokenizer(path: Path) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _log_load_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("the embedding model could not be loaded: %s", future.exception())
