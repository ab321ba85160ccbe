"""I/O for Ollama's native API: ``POST /api/chat`` (NDJSON when streaming), ``/api/tags``, ``/api/embed``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from ailb.errors import UpstreamConnectionError
from ailb.providers.ollama import translate
from ailb.providers.ollama.stream import OllamaStream
from ailb.providers.transport import Transport, ndjson_lines
from ailb.settings import DeploymentConfig
from ailb.types import Completion, StreamChunk


class OllamaProvider:
    """``config.base_url`` is the Ollama server root, e.g. ``http://127.0.0.1:11434``."""

    def __init__(self, config: DeploymentConfig) -> None:
        self.config = config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self.transport = Transport(config, headers, translate.status_error)

    async def complete(self, body: Mapping[str, Any], model: str) -> Completion:
        data = await self.transport.post_json("/api/chat", translate.request_body(body, model, False))
        return translate.completion_from_response(data, model, self.config.name)

    async def stream(self, body: Mapping[str, Any], model: str, include_usage: bool) -> AsyncIterator[StreamChunk]:
        name = self.config.name
        state = OllamaStream(model, include_usage, name)
        async with self.transport.open_stream("/api/chat", translate.request_body(body, model, True)) as resp:
            async for line in ndjson_lines(self.transport.read_chunks(resp, first=True)):
                for chunk in state.feed(line):
                    yield chunk
                if state.finished:
                    return
        raise UpstreamConnectionError(f"Deployment '{name}' ended the stream before it was complete.", deployment=name)

    async def embed(self, texts: Sequence[str], model: str) -> list[list[float]]:
        """Embeddings of ``texts`` from ``/api/embed``, in order."""
        if not texts:
            return []
        data = await self.transport.post_json("/api/embed", translate.embed_request(texts, model))
        return translate.embeddings_from_response(data, len(texts), self.config.name)

    async def list_models(self) -> list[str]:
        return translate.model_ids(await self.transport.get_json("/api/tags"))

    async def check_health(self) -> None:
        await self.transport.get_json("/api/tags")

    async def aclose(self) -> None:
        await self.transport.aclose()
