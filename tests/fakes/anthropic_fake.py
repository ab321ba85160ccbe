"""A loopback Anthropic Messages API: JSON and SSE answers, tool_use blocks, models, Anthropic-shaped errors."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any, ClassVar

import orjson
from aiohttp import web

from tests.fakes.base import FakeProvider, Frame, Handler
from tests.fakes.chat_rules import anthropic_request_errors
from tests.fakes.script import Answer, argument_fragments, count_words, text_pieces

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}


def anthropic_error(status: int, message: str | None = None) -> web.Response:
    err_type, default = _ERRORS.get(
        status, ("api_error" if status >= 500 else "invalid_request_error", f"HTTP {status}")
    )
    body = {"type": "error", "error": {"type": err_type, "message": message or default}}
    return web.json_response(body, status=status, headers={"request-id": f"req_{uuid.uuid4().hex[:24]}"})


class AnthropicFake(FakeProvider):
    """``base_url`` is the root URL, like ``https://api.anthropic.com``.

    Every call needs the key (``x-api-key``, or ``Authorization: Bearer`` as recent SDKs send it) and
    ``anthropic-version``. Request rules follow the documented API strictly: unknown fields are rejected, and
    messages must start with ``user`` and alternate (the real API now merges consecutive turns; an adapter that
    passes here passes there too).
    """

    kind: ClassVar[str] = "anthropic"
    chat_path: ClassVar[str] = "/v1/messages"
    default_models: ClassVar[tuple[str, ...]] = ("claude-3-5-sonnet-latest", "claude-3-5-haiku-latest")

    def extra_routes(self) -> list[tuple[str, str, Handler]]:
        return [("GET", "/v1/models", self._models), ("POST", "/v1/messages/count_tokens", self._count_tokens)]

    def error_response(self, status: int, message: str | None = None) -> web.Response:
        return anthropic_error(status, message)

    def auth_error(self, request: web.Request) -> web.Response | None:
        given = request.headers.get("x-api-key", "")
        bearer = request.headers.get("Authorization", "")
        if not given and bearer.startswith("Bearer "):
            given = bearer[7:].strip()
        if not given:
            return anthropic_error(401, "x-api-key header is required")
        if self.api_key is not None and given != self.api_key:
            return anthropic_error(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return anthropic_error(400, "anthropic-version: header is required")
        return None

    def validate_chat(self, request: web.Request, body: dict[str, Any]) -> web.Response | None:
        problem = anthropic_request_errors(body)
        if problem is not None:
            return anthropic_error(400, problem)
        if body["model"] not in self.models:
            return anthropic_error(404, f"model: {body['model']}")
        return None

    def token_limit(self, body: dict[str, Any]) -> int | None:
        return int(body["max_tokens"])

    def prompt_words(self, body: dict[str, Any]) -> int:
        return count_words(body.get("messages")) + count_words(body.get("system"))

    def whole_body(self, body: dict[str, Any], answer: Answer) -> dict[str, Any]:
        content: list[dict[str, Any]] = [dict(block) for block in _reasoning_blocks(body, answer)]
        if answer.pieces:
            content.append({"type": "text", "text": answer.text})
        content.extend(
            {"type": "tool_use", "id": _tool_id(), "name": name, "input": json.loads(arguments or "{}")}
            for name, arguments in answer.tool_calls
        )
        return {
            **_message_head(body),
            "content": content,
            **_stop(body, answer),
            "usage": _usage(answer, answer.completion_tokens),
        }

    def stream_frames(self, body: dict[str, Any], answer: Answer) -> list[Frame]:
        start = {**_message_head(body), "content": [], "stop_reason": None, "stop_sequence": None}
        start["usage"] = _usage(answer, 1)
        frames = [_event("message_start", {"message": start})]
        index = 0
        for block in _reasoning_blocks(body, answer):
            frames.extend(_reasoning_frames(index, block))
            index += 1
        if answer.pieces or not answer.tool_calls:
            frames.append(
                _event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
            )
            frames.append(_event("ping", {}))
            frames.extend(
                _event("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": piece}}, True)
                for piece in answer.pieces
            )
            frames.append(_event("content_block_stop", {"index": index}))
            index += 1
        for offset, (name, arguments) in enumerate(answer.tool_calls):
            block = {"type": "tool_use", "id": _tool_id(), "name": name, "input": {}}
            frames.append(_event("content_block_start", {"index": index + offset, "content_block": block}, True))
            if not offset and not index:
                frames.append(_event("ping", {}))
            frames.extend(
                _event(
                    "content_block_delta",
                    {"index": index + offset, "delta": {"type": "input_json_delta", "partial_json": fragment}},
                    True,
                )
                for fragment in argument_fragments(arguments)
            )
            frames.append(_event("content_block_stop", {"index": index + offset}))
        frames.append(
            _event(
                "message_delta", {"delta": _stop(body, answer), "usage": {"output_tokens": answer.completion_tokens}}
            )
        )
        frames.append(_event("message_stop", {}))
        return frames

    def error_frame(self, message: str | None = None) -> bytes:
        return _event("error", {"error": {"type": "overloaded_error", "message": message or "Overloaded"}}).data

    def garbage_frame(self, text: str) -> bytes:
        return b"event: content_block_delta\ndata: " + text.encode() + b"\n\n"

    async def _models(self, request: web.Request, body: Any) -> web.StreamResponse:
        data = [
            {"type": "model", "id": model, "display_name": model, "created_at": "2024-10-22T00:00:00Z"}
            for model in self.models
        ]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        return web.json_response({"data": data, "has_more": False, "first_id": first, "last_id": last})

    async def _count_tokens(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not isinstance(body, dict) or not body.get("messages"):
            return anthropic_error(400, "messages: Field required")
        return web.json_response({"input_tokens": max(1, self.prompt_words(body))})


def _message_head(body: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": body["model"]}


def _stop(body: dict[str, Any], answer: Answer) -> dict[str, Any]:
    reason = _STOP_REASONS.get(answer.finish, answer.finish)
    stops = body.get("stop_sequences") or [None]
    return {"stop_reason": reason, "stop_sequence": stops[0] if reason == "stop_sequence" else None}


def _usage(answer: Answer, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": answer.prompt_tokens,
        "cache_creation_input_tokens": answer.cache_write_tokens,
        "cache_read_input_tokens": answer.cache_read_tokens,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def thinking_signature(thinking: str) -> str:
    """The signature the fake gives a thinking block (opaque to clients, checked by nobody but Anthropic)."""
    return "EqQBCkYIBxgCKkD" + hashlib.sha256(thinking.encode()).hexdigest()[:32]


def _reasoning_blocks(body: dict[str, Any], answer: Answer) -> list[dict[str, Any]]:
    """Thinking blocks, sent only when the request enabled extended thinking (as the real API does)."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return []
    blocks: list[dict[str, Any]] = []
    if answer.reasoning:
        blocks.append(
            {"type": "thinking", "thinking": answer.reasoning, "signature": thinking_signature(answer.reasoning)}
        )
    if answer.redacted_reasoning:
        blocks.append({"type": "redacted_thinking", "data": answer.redacted_reasoning})
    return blocks


def _reasoning_frames(index: int, block: dict[str, Any]) -> list[Frame]:
    if block["type"] == "redacted_thinking":
        return [
            _event("content_block_start", {"index": index, "content_block": block}, True),
            _event("content_block_stop", {"index": index}),
        ]
    frames = [
        _event("content_block_start", {"index": index, "content_block": {**block, "thinking": "", "signature": ""}})
    ]
    frames.extend(
        _event("content_block_delta", {"index": index, "delta": {"type": "thinking_delta", "thinking": piece}}, True)
        for piece in text_pieces(block["thinking"])
    )
    frames.append(
        _event(
            "content_block_delta",
            {"index": index, "delta": {"type": "signature_delta", "signature": block["signature"]}},
        )
    )
    frames.append(_event("content_block_stop", {"index": index}))
    return frames


def _event(name: str, data: dict[str, Any], content: bool = False) -> Frame:
    payload = orjson.dumps({"type": name, **data})
    return Frame(b"event: " + name.encode() + b"\ndata: " + payload + b"\n\n", content=content)


def _tool_id() -> str:
    return f"toolu_01{uuid.uuid4().hex[:22]}"
