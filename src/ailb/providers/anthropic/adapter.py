"""I/O for Anthropic's Messages API (``POST /v1/messages``, SSE when streaming)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from functools import partial
from typing import Any

from ailb.contract import Completion, StreamChunk
from ailb.providers.anthropic import passthrough, request, response
from ailb.providers.anthropic.stream import AnthropicStream
from ailb.providers.canonical import ChunkWriter
from ailb.providers.choices import complete_choices, stream_choices
from ailb.providers.framing import SseData
from ailb.providers.relay import relay
from ailb.providers.scrub import scrub_completion
from ailb.providers.tooling import legacy_functions
from ailb.providers.transport import Transport
from ailb.redaction import Redactor
from ailb.settings import DeploymentConfig


class AnthropicProvider:
    """``config.base_url`` is the API root as the Anthropic SDK takes it (e.g. ``https://api.anthropic.com``);
    a root that already ends in ``/v1`` is accepted too. ``redactor`` holds every secret of the gateway (by
    default: this deployment's key)."""

    def __init__(self, config: DeploymentConfig, redactor: Redactor | None = None) -> None:
        self.config = config
        self.redactor = redactor if redactor is not None else Redactor([config.api_key])
        headers = {"anthropic-version": request.ANTHROPIC_VERSION}
        if config.api_key:
            headers["x-api-key"] = config.api_key
        self.transport = Transport(config, headers, response.status_error, self.redactor)
        prefix = "" if config.base_url.endswith("/v1") else "/v1"
        self._messages_path = prefix + "/messages"
        self._models_path = prefix + "/models"

    async def complete(self, body: Mapping[str, Any], model: str) -> Completion:
        return await complete_choices(body, partial(self._complete_one, model=model))

    def stream(self, body: Mapping[str, Any], model: str, include_usage: bool) -> AsyncIterator[StreamChunk]:
        return stream_choices(body, model, include_usage, partial(self._stream_one, model=model))

    async def _complete_one(self, body: Mapping[str, Any], model: str) -> Completion:
        payload = request.request_body(body, model, False, self.config.default_max_tokens)
        data = await self.transport.post_json(self._messages_path, payload)
        legacy = legacy_functions(body)
        completion = response.completion_from_response(data, model, self.config.name, legacy_functions=legacy)
        return scrub_completion(completion, self.redactor.secrets)

    def _stream_one(self, body: Mapping[str, Any], writer: ChunkWriter, model: str) -> AsyncIterator[StreamChunk]:
        payload = request.request_body(body, model, True, self.config.default_max_tokens)
        state = AnthropicStream(model, writer.include_usage, self.config.name, writer=writer)
        return relay(self.transport, self._messages_path, payload, SseData, state, self.redactor.secrets)

    # --- the Messages API passed through (``/v1/messages`` clients; see ``passthrough``) -------------------------
    async def complete_native(self, payload: bytes) -> Completion:
        """Send a Messages request as the client wrote it; the answer's body is Anthropic's own."""
        raw, data = await self.transport.post_json_raw(self._messages_path, payload)
        completion = passthrough.native_completion(data, raw, self.config.name)
        return scrub_completion(completion, self.redactor.secrets)

    def stream_native(self, payload: bytes) -> AsyncIterator[StreamChunk]:
        """Stream a Messages request; each chunk's frame is one of Anthropic's events, unchanged."""
        state = passthrough.NativeStream(self.config.name)
        return relay(self.transport, self._messages_path, payload, SseData, state, self.redactor.secrets)

    async def count_tokens_native(self, payload: bytes) -> int:
        """Anthropic's own count of a Messages request's input tokens (spends no tokens)."""
        data = await self.transport.post_json(self._messages_path + "/count_tokens", payload)
        return passthrough.input_tokens(data, self.config.name)

    async def list_models(self) -> list[str]:
        # Anthropic pages model lists (20 by default); one page of up to 1000 holds them all.
        return response.model_ids(await self.transport.get_json(self._models_path + "?limit=1000"))

    async def check_health(self) -> None:
        await self.transport.get_json(self._models_path)

    async def aclose(self) -> None:
        await self.transport.aclose()
