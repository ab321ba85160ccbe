"""I/O for Ollama's native API: ``POST /api/chat`` (NDJSON when streaming), ``/api/tags``, ``/api/embed``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from functools import partial
from typing import Any

from ailb.contract import Completion, EmbeddingResult, StreamChunk
from ailb.providers.canonical import ChunkWriter
from ailb.providers.choices import complete_choices, stream_choices
from ailb.providers.framing import NdjsonLines
from ailb.providers.ollama import request, response
from ailb.providers.ollama.stream import OllamaStream
from ailb.providers.relay import relay
from ailb.providers.scrub import scrub_completion
from ailb.providers.tooling import legacy_functions
from ailb.providers.transport import Transport
from ailb.redaction import Redactor
from ailb.settings import DeploymentConfig


class OllamaProvider:
    """``config.base_url`` is the Ollama server root, e.g. ``http://127.0.0.1:11434``. ``redactor`` holds every
    secret of the gateway (by default: this deployment's key, if it has one)."""

    def __init__(self, config: DeploymentConfig, redactor: Redactor | None = None) -> None:
        self.config = config
        self.redactor = redactor if redactor is not None else Redactor([config.api_key])
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self.transport = Transport(config, headers, response.status_error, self.redactor)

    async def complete(self, body: Mapping[str, Any], model: str) -> Completion:
        return await complete_choices(body, partial(self._complete_one, model=model))

    def stream(self, body: Mapping[str, Any], model: str, include_usage: bool) -> AsyncIterator[StreamChunk]:
        return stream_choices(body, model, include_usage, partial(self._stream_one, model=model))

    async def _complete_one(self, body: Mapping[str, Any], model: str) -> Completion:
        data = await self.transport.post_json("/api/chat", request.request_body(body, model, False))
        legacy = legacy_functions(body)
        completion = response.completion_from_response(data, model, self.config.name, legacy_functions=legacy)
        return scrub_completion(completion, self.redactor.secrets)

    def _stream_one(self, body: Mapping[str, Any], writer: ChunkWriter, model: str) -> AsyncIterator[StreamChunk]:
        payload = request.request_body(body, model, True)
        state = OllamaStream(model, writer.include_usage, self.config.name, writer=writer)
        return relay(self.transport, "/api/chat", payload, NdjsonLines, state, self.redactor.secrets)

    async def embed(self, texts: Sequence[str], model: str) -> list[list[float]]:
        """Embeddings of ``texts`` from ``/api/embed``, in order."""
        if not texts:
            return []
        data = await self.transport.post_json("/api/embed", request.embed_request(texts, model))
        return response.embeddings_from_response(data, len(texts), self.config.name)

    async def create_embeddings(self, texts: Sequence[str], model: str, dimensions: int | None) -> EmbeddingResult:
        """``/v1/embeddings`` for a client: the vectors and the prompt tokens Ollama counted."""
        payload = request.embed_request(texts, model, dimensions)
        data = await self.transport.post_json("/api/embed", payload)
        return response.embedding_result(data, len(texts), self.config.name)

    async def list_models(self) -> list[str]:
        return response.model_ids(await self.transport.get_json("/api/tags"))

    async def check_health(self) -> None:
        await self.transport.get_json("/api/tags")

    async def aclose(self) -> None:
        await self.transport.aclose()
