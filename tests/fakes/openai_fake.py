"""A loopback OpenAI API: chat completions (JSON and SSE), models, embeddings, OpenAI-shaped errors."""

from __future__ import annotations

import base64
import struct
import time
import uuid
from typing import Any, ClassVar

import orjson
from aiohttp import web

from tests.fakes.base import FakeProvider, Frame, Handler
from tests.fakes.chat_rules import openai_message_errors
from tests.fakes.script import Answer, argument_fragments, count_words, fake_embedding, text_pieces

_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Country not supported."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_FINGERPRINT = "fp_fake0001"


def openai_error(
    status: int, message: str | None = None, code: str | None = None, param: str | None = None
) -> web.Response:
    err_type, default_code, default_message = _ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status}")
    )
    body = {
        "error": {"message": message or default_message, "type": err_type, "param": param, "code": code or default_code}
    }
    return web.json_response(body, status=status)


class OpenAIFake(FakeProvider):
    """``base_url`` ends in ``/v1``, like ``https://api.openai.com/v1``.

    A wrong key's 401 message echoes the key in full (the real API masks its middle), so a test can prove the
    gateway never passes an upstream's error text through with a secret in it.

    A scripted call to a tool the request offered as ``custom`` is answered as a custom tool call in whole answers;
    streamed, it is sent like a function call (OpenAI documents no streamed shape for custom tool calls).
    """

    kind: ClassVar[str] = "openai"
    chat_path: ClassVar[str] = "/v1/chat/completions"
    api_prefix: ClassVar[str] = "/v1"
    default_models: ClassVar[tuple[str, ...]] = ("gpt-4o", "gpt-4o-mini")

    def extra_routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/v1/models", self._models),
            ("GET", "/v1/models/{model}", self._model),
            ("POST", "/v1/embeddings", self._embeddings),
        ]

    def error_response(self, status: int, message: str | None = None) -> web.Response:
        return openai_error(status, message)

    def auth_error(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            return openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code="",
            )
        given = header[7:].strip()
        if self.api_key is not None and given != self.api_key:
            return openai_error(401, f"Incorrect API key provided: {given}.", code="invalid_api_key")
        return None

    def validate_chat(self, request: web.Request, body: dict[str, Any]) -> web.Response | None:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return openai_error(400, "you must provide a model parameter", param="model")
        problem = openai_message_errors(body)
        if problem is not None:
            return openai_error(400, problem[1], param=problem[0])
        if body.get("stream_options") is not None and not body.get("stream"):
            return openai_error(
                400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
            )
        if model not in self.models:
            return openai_error(
                404, f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found"
            )
        return None

    def token_limit(self, body: dict[str, Any]) -> int | None:
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        return limit if isinstance(limit, int) else None

    def whole_body(self, body: dict[str, Any], answer: Answer) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": answer.text if answer.pieces or not answer.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        if answer.reasoning:
            message["reasoning_content"] = answer.reasoning
        if answer.tool_calls:
            custom = _custom_tool_names(body)
            message["tool_calls"] = [
                {"id": _call_id(), "type": "custom", "custom": {"name": name, "input": arguments}}
                if name in custom
                else {"id": _call_id(), "type": "function", "function": {"name": name, "arguments": arguments}}
                for name, arguments in answer.tool_calls
            ]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish}],
            "usage": _usage(answer),
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }

    def stream_frames(self, body: dict[str, Any], answer: Answer) -> list[Frame]:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        head = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body["model"],
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }

        def chunk(delta: dict[str, Any], finish: str | None = None, content: bool = True) -> Frame:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            data: dict[str, Any] = {**head, "choices": [choice]}
            if include_usage:
                data["usage"] = None
            return Frame(_sse(data), content=content)

        frames: list[Frame] = []
        if answer.pieces or not answer.tool_calls:
            frames.append(chunk({"role": "assistant", "content": "", "refusal": None}, content=False))
            frames.extend(chunk({"reasoning_content": piece}) for piece in text_pieces(answer.reasoning))
            frames.extend(chunk({"content": piece}) for piece in answer.pieces)
        for index, (name, arguments) in enumerate(answer.tool_calls):
            call = {"index": index, "id": _call_id(), "type": "function", "function": {"name": name, "arguments": ""}}
            delta: dict[str, Any] = {"tool_calls": [call]}
            if not frames:
                delta = {"role": "assistant", "content": None, **delta, "refusal": None}
            frames.append(chunk(delta))
            frames.extend(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
                for fragment in argument_fragments(arguments)
            )
        frames.append(chunk({}, answer.finish, content=False))
        if include_usage:
            frames.append(Frame(_sse({**head, "choices": [], "usage": _usage(answer)})))
        frames.append(Frame(b"data: [DONE]\n\n"))
        return frames

    def error_frame(self, message: str | None = None) -> bytes:
        error = {"message": message or _ERRORS[500][2], "type": "server_error", "param": None, "code": None}
        return _sse({"error": error})

    async def _models(self, request: web.Request, body: Any) -> web.StreamResponse:
        return web.json_response({"object": "list", "data": [_model_card(model) for model in self.models]})

    async def _model(self, request: web.Request, body: Any) -> web.StreamResponse:
        model = request.match_info["model"]
        if model not in self.models:
            return openai_error(404, f"The model '{model}' does not exist", code="model_not_found", param="model")
        return web.json_response(_model_card(model))

    async def _embeddings(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not isinstance(body, dict) or not body.get("model") or "input" not in body:
            return openai_error(400, "'input' and 'model' are required properties.")
        texts = _embedding_inputs(body["input"])
        if texts is None:
            return openai_error(400, "'$.input' is invalid.", param="input")
        dimensions = body.get("dimensions") or self.embedding_dimensions
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector = fake_embedding(text, int(dimensions))
            embedding: Any = (
                base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() if as_base64 else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(max(1, count_words(text)) for text in texts)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )


def _embedding_inputs(raw: Any) -> list[str] | None:
    """Texts to embed; token-id inputs are embedded by their decimal spelling."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(item, str) for item in raw):
        return list(raw)
    if isinstance(raw, list) and raw and all(isinstance(item, int) for item in raw):
        return [" ".join(map(str, raw))]
    if isinstance(raw, list) and raw and all(isinstance(item, list) for item in raw):
        return [" ".join(map(str, item)) for item in raw]
    return None


def _model_card(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 1715367049, "owned_by": "system"}


def _custom_tool_names(body: dict[str, Any]) -> set[str]:
    return {
        tool["custom"]["name"]
        for tool in body.get("tools") or ()
        if isinstance(tool, dict) and tool.get("type") == "custom"
    }


def _usage(answer: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": answer.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"
