"""I/O for Anthropic's Messages API (``POST /v1/messages``, SSE when streaming)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from ailb.errors import UpstreamConnectionError
from ailb.providers.anthropic import response, translate
from ailb.providers.anthropic.stream import AnthropicStream
from ailb.providers.transport import Transport, sse_events
from ailb.settings import DeploymentConfig
from ailb.types import Completion, StreamChunk


class AnthropicProvider:
    """``config.base_url`` is the API root as the Anthropic SDK takes it (e.g. ``https://api.anthropic.com``);
    a root that already ends in ``/v1`` is accepted too."""

    def __init__(self, config: DeploymentConfig) -> None:
        self.config = config
        headers = {"anthropic-version": translate.ANTHROPIC_VERSION}
        if config.api_key:
            headers["x-api-key"] = config.api_key
        self.transport = Transport(config, headers, response.status_error)
        prefix = "" if config.base_url.endswith("/v1") else "/v1"
        self._messages_path = prefix + "/messages"
        self._models_path = prefix + "/models"

    async def complete(self, body: Mapping[str, Any], model: str) -> Completion:
        payload = translate.request_body(body, model, False, self.config.default_max_tokens)
        data = await self.transport.post_json(self._messages_path, payload)
        return response.completion_from_response(data, model, self.config.name)

    async def stream(self, body: Mapping[str, Any], model: str, include_usage: bool) -> AsyncIterator[StreamChunk]:
        name = self.config.name
        payload = translate.request_body(body, model, True, self.config.default_max_tokens)
        state = AnthropicStream(model, include_usage, name)
        async with self.transport.open_stream(self._messages_path, payload) as resp:
            async for _event, data in sse_events(self.transport.read_chunks(resp, first=True)):
                for chunk in state.feed(data):
                    yield chunk
                if state.finished:
                    return
        raise UpstreamConnectionError(f"Deployment '{name}' ended the stream before it was complete.", deployment=name)

    async def list_models(self) -> list[str]:
        # Anthropic pages model lists (20 by default); one page of up to 1000 holds them all.
        return response.model_ids(await self.transport.get_json(self._models_path + "?limit=1000"))

    async def check_health(self) -> None:
        await self.transport.get_json(self._models_path)

    async def aclose(self) -> None:
        await self.transport.aclose()
