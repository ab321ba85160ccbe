"""I/O for OpenAI-compatible upstreams (OpenAI, vLLM, llama.cpp, ...)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from ailb.errors import UpstreamConnectionError
from ailb.providers.openai import translate
from ailb.providers.transport import Transport, sse_events, status_error
from ailb.settings import DeploymentConfig
from ailb.types import Completion, StreamChunk


class OpenAIProvider:
    def __init__(self, config: DeploymentConfig) -> None:
        self.config = config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self.transport = Transport(config, headers, status_error)

    async def complete(self, body: Mapping[str, Any], model: str) -> Completion:
        raw, data = await self.transport.post_json_raw("/chat/completions", translate.request_body(body, model, False))
        completion = translate.completion_from_response(data, self.config.name)
        completion.raw = raw
        return completion

    async def stream(self, body: Mapping[str, Any], model: str, include_usage: bool) -> AsyncIterator[StreamChunk]:
        name = self.config.name
        payload = translate.request_body(body, model, True)
        finished = False
        async with self.transport.open_stream("/chat/completions", payload) as resp:
            async for _event, data in sse_events(self.transport.read_chunks(resp, first=True)):
                if data == b"[DONE]":
                    return
                chunk = translate.chunk_from_event(data, include_usage, name)
                finished = finished or chunk.finish_reason is not None
                yield chunk
        if not finished:
            raise UpstreamConnectionError(
                f"Deployment '{name}' ended the stream before it was complete.", deployment=name
            )

    async def embed(self, texts: Sequence[str], model: str) -> list[list[float]]:
        """Embeddings of ``texts`` from ``/embeddings``, in order."""
        if not texts:
            return []
        data = await self.transport.post_json("/embeddings", translate.embed_request(texts, model))
        return translate.embeddings_from_response(data, len(texts), self.config.name)

    async def list_models(self) -> list[str]:
        return translate.model_ids(await self.transport.get_json("/models"))

    async def check_health(self) -> None:
        await self.transport.get_json("/models")

    async def aclose(self) -> None:
        await self.transport.aclose()
