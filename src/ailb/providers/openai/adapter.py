"""I/O for OpenAI-compatible upstreams (OpenAI, vLLM, llama.cpp, ...)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from ailb.contract import Completion, EmbeddingResult, StreamChunk
from ailb.providers.framing import SseData
from ailb.providers.openai import request, response
from ailb.providers.openai.stream import OpenAIStream
from ailb.providers.relay import relay
from ailb.providers.scrub import scrub_completion
from ailb.providers.transport import Transport
from ailb.redaction import Redactor
from ailb.settings import DeploymentConfig


class OpenAIProvider:
    """``redactor`` holds every secret of the gateway (by default: this deployment's key)."""

    def __init__(self, config: DeploymentConfig, redactor: Redactor | None = None) -> None:
        self.config = config
        self.redactor = redactor if redactor is not None else Redactor([config.api_key])
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self.transport = Transport(config, headers, response.status_error, self.redactor)

    async def complete(self, body: Mapping[str, Any], model: str) -> Completion:
        payload = request.request_body(body, model, False)
        raw, data = await self.transport.post_json_raw("/chat/completions", payload)
        completion = response.completion_from_response(data, self.config.name, raw)
        return scrub_completion(completion, self.redactor.secrets)

    def stream(self, body: Mapping[str, Any], model: str, include_usage: bool) -> AsyncIterator[StreamChunk]:
        payload = request.request_body(body, model, True)
        state = OpenAIStream(include_usage, self.config.name)
        return relay(self.transport, "/chat/completions", payload, SseData, state, self.redactor.secrets)

    async def embed(self, texts: Sequence[str], model: str) -> list[list[float]]:
        """Embeddings of ``texts`` from ``/embeddings``, in order."""
        if not texts:
            return []
        data = await self.transport.post_json("/embeddings", request.embed_request(texts, model))
        return response.embeddings_from_response(data, len(texts), self.config.name)

    async def create_embeddings(self, texts: Sequence[str], model: str, dimensions: int | None) -> EmbeddingResult:
        """``/v1/embeddings`` for a client: the vectors and the prompt tokens the upstream reports."""
        payload = request.embed_request(texts, model, dimensions)
        data = await self.transport.post_json("/embeddings", payload)
        return response.embedding_result(data, len(texts), self.config.name)

    async def list_models(self) -> list[str]:
        return response.model_ids(await self.transport.get_json("/models"))

    async def check_health(self) -> None:
        await self.transport.get_json("/models")

    async def aclose(self) -> None:
        await self.transport.aclose()
