"""``/v1/embeddings``: the packaged model, or a deployment's embedding model routed like chat; metered alike.

The packaged all-MiniLM-L6-v2 answers the name ``all-MiniLM-L6-v2`` (384 dimensions, owned by ``ailb``) unless a
deployment declares an embedding model of that name: free, offline, computed off the event loop. It loads on
its first request (a few seconds) unless memory or RAG already loaded it. Its token counts are exact (its own
tokenizer); a text longer than its window (256 tokens) is refused rather than cut short. Deployments' embedding
models are counted with the prompt tokenizer until the upstream reports its own count.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from ailb.contract import EmbeddingCall, EmbeddingResult, ModelInfo, Usage
from ailb.errors import InvalidRequestError, NotFoundError
from ailb.routing.router import RouteInfo

if TYPE_CHECKING:
    from ailb.embeddings.base import Embedder
    from ailb.governance.meter import Meter
    from ailb.routing.router import Router

LOCAL_MODEL = "all-MiniLM-L6-v2"
LOCAL_OWNER = "ailb"
LOCAL_DEPLOYMENT = "local"
COUNT_IN_THREAD = 32_000  # characters beyond which token counting leaves the event loop


class EmbeddingService:
    def __init__(self, router: Router, local: Embedder | None) -> None:
        self.router = router
        self.local = local

    def models(self) -> list[ModelInfo]:
        """The packaged model, when it is offered and no deployment took its name."""
        if self.local is None or self.router.embedding_catalog.has(LOCAL_MODEL):
            return []
        return [ModelInfo(id=LOCAL_MODEL, owned_by=LOCAL_OWNER, extra={"dimensions": self.local.dimensions})]

    def is_local(self, model: str) -> bool:
        return model == LOCAL_MODEL and bool(self.models())

    def resolve(self, model: str) -> None:
        """Raise unless ``model`` is an embedding model served here."""
        if self.is_local(model) or self.router.embedding_catalog.has(model):
            return
        if self.router.catalog.has(model):
            raise NotFoundError(
                f"The model `{model}` is a chat model; it does not serve embeddings.",
                param="model",
                code="model_not_found",
            )
        raise NotFoundError(
            f"The model `{model}` does not exist or does not serve embeddings on this gateway.",
            param="model",
            code="model_not_found",
        )

    async def embed(self, call: EmbeddingCall, meter: Meter | None) -> tuple[EmbeddingResult, RouteInfo]:
        self.resolve(call.model)
        local = self.is_local(call.model)
        counts = await self._counts(call, local)
        prompt_tokens = sum(counts)
        if meter is not None:
            targets = () if local else self.router.embedding_catalog.targets(call.model)
            await meter.reserve_input(self.router, targets, prompt_tokens)
        try:
            if local:
                result, route = await self._local(call, counts)
            else:
                result, route = await self.router.embed(call, prompt_tokens=prompt_tokens)
        except BaseException:
            if meter is not None:
                meter.release()
            raise
        if meter is not None:
            meter.settle(Usage(result.prompt_tokens or prompt_tokens), "", route)
        return EmbeddingResult(result.vectors, result.prompt_tokens or prompt_tokens), route

    async def _counts(self, call: EmbeddingCall, local: bool) -> list[int]:
        count = self.local.count_tokens if local and self.local is not None else self.router.tokens.count_text
        if sum(len(text) for text in call.texts) > COUNT_IN_THREAD:
            return await asyncio.to_thread(lambda: [count(text) for text in call.texts])
        return [count(text) for text in call.texts]

    async def _local(self, call: EmbeddingCall, counts: list[int]) -> tuple[EmbeddingResult, RouteInfo]:
        assert self.local is not None
        dimensions = self.local.dimensions
        if call.dimensions is not None and call.dimensions != dimensions:
            raise InvalidRequestError(
                f"`{LOCAL_MODEL}` makes {dimensions}-dimensional embeddings; `dimensions` must be {dimensions} "
                "or left out.",
                param="dimensions",
                code="invalid_value",
            )
        window = self.local.max_tokens
        for index, count in enumerate(counts):
            if count > window:
                raise InvalidRequestError(
                    f"Input {index} is {count} tokens long; `{LOCAL_MODEL}` reads at most {window} tokens per input.",
                    param=f"input[{index}]" if len(counts) > 1 else "input",
                    code="context_length_exceeded",
                )
        started = time.perf_counter()
        vectors = await self.local.embed(list(call.texts))
        seconds = time.perf_counter() - started
        route = RouteInfo(LOCAL_DEPLOYMENT, LOCAL_OWNER, LOCAL_MODEL, 1, "direct", seconds)
        return EmbeddingResult(vectors, sum(counts)), route
