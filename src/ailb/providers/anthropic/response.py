"""Pure translation of Anthropic's answers and errors to the canonical (OpenAI) form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ailb.contract import Completion, Usage
from ailb.errors import UpstreamError, UpstreamProtocolError, UpstreamStatusError
from ailb.providers import canonical
from ailb.providers.anthropic.thinking import block_for_client
from ailb.providers.errors import Redact, error_message, status_message, stream_failure

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def usage_from(data: Any) -> Usage:
    """OpenAI usage from Anthropic's: prompt tokens are the whole input, cache writes and reads included (and
    counted apart, for ``prompt_tokens_details.cached_tokens`` and pricing)."""
    if not isinstance(data, Mapping):
        return Usage()
    uncached, written, read = (_count(data, key) for key in _INPUT_COUNTS)
    return Usage(uncached + written + read, _count(data, "output_tokens"), read, written)


_INPUT_COUNTS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def _count(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) and value > 0 else 0


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def completion_from_response(data: Any, model: str, deployment: str, *, legacy_functions: bool = False) -> Completion:
    """The ``chat.completion`` for a Messages answer: text blocks joined, ``tool_use`` blocks as tool calls,
    thinking as ``reasoning_content`` plus the signed ``thinking_blocks`` (redacted ones included)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("content"), list):
        raise UpstreamProtocolError(
            f"Deployment '{deployment}' returned a message without content.", deployment=deployment
        )
    texts: list[str] = []
    reasoning: list[str] = []
    thinking: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in data["content"]:
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                canonical.tool_call(str(block.get("id") or canonical.call_id()), str(block.get("name")), arguments)
            )
        elif kind in ("thinking", "redacted_thinking"):
            thinking.append(block_for_client(block))
            reasoning.append(str(block.get("thinking") or "") if kind == "thinking" else "")
    text = "".join(texts)
    usage = usage_from(data.get("usage"))
    body = canonical.completion_body(
        model=str(data.get("model") or model),
        content=text,
        tool_calls=calls,
        finish_reason=finish_reason(data.get("stop_reason")),
        usage=usage,
        reasoning="".join(reasoning),
        thinking_blocks=thinking,
        legacy_functions=legacy_functions,
    )
    return Completion(body=body, usage=usage, text=text)


def model_ids(data: Any) -> list[str]:
    items = data.get("data") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        return []
    return [str(m["id"]) for m in items if isinstance(m, Mapping) and m.get("id")]


# --- errors ---------------------------------------------------------------------------------------------
# Anthropic error type -> (OpenAI-style type, code, status for mid-stream errors, retryable mid-stream)
ERROR_TYPES: dict[str, tuple[str, str | None, int, bool]] = {
    "invalid_request_error": ("invalid_request_error", None, 400, False),
    "request_too_large": ("invalid_request_error", "request_too_large", 413, False),
    "not_found_error": ("invalid_request_error", "not_found", 404, False),
    "authentication_error": ("upstream_error", "upstream_error", 502, True),
    "permission_error": ("upstream_error", "upstream_error", 502, True),
    "billing_error": ("upstream_error", "upstream_error", 502, True),
    "rate_limit_error": ("rate_limit_error", "rate_limit_exceeded", 429, True),
    "timeout_error": ("upstream_error", "upstream_timeout", 504, True),
    "api_error": ("upstream_error", "upstream_error", 502, True),
    "overloaded_error": ("upstream_error", "upstream_overloaded", 502, True),
}
_UNKNOWN_ERROR = ("upstream_error", "upstream_error", 502, True)


def status_error(status: int, body: bytes, deployment: str, retry_after: float | None, redact: Redact) -> UpstreamError:
    """An Anthropic error answer (``{"type": "error", "error": {"type", "message"}}``) as ours."""
    message, anthropic_type, _code, _param = error_message(body)
    openai_type, code, _status, _retryable = ERROR_TYPES.get(anthropic_type or "", _UNKNOWN_ERROR)
    return UpstreamStatusError(
        status_message(status, message, deployment, redact),
        detail=message or None,
        upstream_status=status,
        deployment=deployment,
        retry_after=retry_after,
        code=code if status < 500 else None,
        error_type=openai_type if status < 500 else None,
    )


def stream_error(error: Any, deployment: str) -> UpstreamError:
    """The ``error`` event Anthropic may send mid-stream, e.g. ``overloaded_error``: its type (when it is one we
    know) is named, its message is detail for the log."""
    error = error if isinstance(error, Mapping) else {}
    anthropic_type = str(error.get("type") or "")
    known = anthropic_type in ERROR_TYPES
    openai_type, code, status, retryable = ERROR_TYPES.get(anthropic_type, _UNKNOWN_ERROR)
    return stream_failure(
        deployment,
        error.get("message") or anthropic_type or None,
        anthropic_type if known else "",
        status=status,
        retryable=retryable,
        code=code,
        error_type=openai_type,
    )
