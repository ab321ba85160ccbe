"""Embeddings from a configured deployment's endpoint (OpenAI-compatible ``/v1/embeddings``, Ollama ``/api/embed``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ailb.embeddings.base import EmbeddingError
from ailb.embeddings.cache import VectorCache
from ailb.errors import AILBError
from ailb.settings import DeploymentConfig
from ailb.token_estimate import estimate_tokens, leading


@runtime_checkable
class EmbeddingsProvider(Protocol):
    """A provider adapter that also serves embeddings."""

    config: DeploymentConfig

    async def embed(self, texts: Sequence[str], model: str) -> list[list[float]]: ...


class ProviderEmbedder:
    """Calls ``provider.embed`` in batches and normalizes the vectors to unit length.

    Token counts are estimated (``token_estimate``): the provider's tokenizer is not here.
    """

    def __init__(
        self,
        provider: EmbeddingsProvider,
        model: str,
        *,
        max_tokens: int = 512,
        batch_size: int = 64,
        cache_size: int = 1024,
    ) -> None:
        self.provider = provider
        self.model = model
        self.name = f"provider:{model}"
        self.dimensions = 0
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.cache = VectorCache(cache_size)

    @property
    def ready(self) -> bool:
        return True

    def status(self) -> str:
        return "ok"

    async def start(self) -> None:
        return None

    async def wait_ready(self) -> None:
        return None

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            try:
                answer = await self.provider.embed(batch, self.model)
            except AILBError as exc:
                raise EmbeddingError(
                    f"The embeddings endpoint of deployment {self.provider.config.name!r} failed: {exc}"
                ) from exc
            vectors.extend(self._normalized(answer, len(batch)))
        return vectors

    async def embed_query(self, text: str, max_tokens: int | None = None) -> list[float]:
        if max_tokens is not None:
            text = leading(text, max_tokens)  # estimated: the provider's tokenizer is not here
        cached = self.cache.get(text)
        if cached is not None:
            return cached
        vector = (await self.embed([text]))[0]
        self.cache.put(text, vector)
        return vector

    def count_tokens(self, text: str) -> int:
        return max(1, estimate_tokens(text))

    async def aclose(self) -> None:
        return None

    def _normalized(self, vectors: list[list[float]], expected: int) -> list[list[float]]:
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != expected or matrix.shape[1] == 0:
            raise EmbeddingError(
                f"The embeddings endpoint of deployment {self.provider.config.name!r} answered "
                f"{matrix.shape[0] if matrix.ndim else 0} vectors for {expected} texts."
            )
        if self.dimensions and matrix.shape[1] != self.dimensions:
            raise EmbeddingError(
                f"The embeddings model {self.model!r} changed dimensions ({self.dimensions} → {matrix.shape[1]})."
            )
        self.dimensions = int(matrix.shape[1])
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return (matrix / norms).tolist()  # type: ignore[no-any-return]
