"""Pure translation of Ollama's answers and errors to the canonical (OpenAI) form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ailb.contract import Completion, EmbeddingResult, Usage
from ailb.errors import UpstreamError, UpstreamProtocolError
from ailb.providers import canonical, errors
from ailb.providers.errors import Redact, stream_failure

FINISH_REASONS = {"stop": "stop", "length": "length"}


def usage_from(data: Mapping[str, Any]) -> Usage:
    return Usage(int(data.get("prompt_eval_count") or 0), int(data.get("eval_count") or 0))


def finish_reason(done_reason: Any, has_tool_calls: bool) -> str:
    if has_tool_calls:
        return "tool_calls"
    return FINISH_REASONS.get(done_reason, "stop") if isinstance(done_reason, str) else "stop"


def tool_calls_from(message: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(name, arguments JSON string)`` of each tool call in an Ollama message."""
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return []
    out = []
    for call in calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            continue
        arguments = function.get("arguments")
        text = arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode()
        out.append((str(function.get("name") or ""), text))
    return out


def completion_from_response(data: Any, model: str, deployment: str, *, legacy_functions: bool = False) -> Completion:
    if not isinstance(data, Mapping) or not isinstance(data.get("message"), Mapping):
        raise UpstreamProtocolError(
            f"Deployment '{deployment}' returned an answer without a message.", deployment=deployment
        )
    message = data["message"]
    text = message.get("content") if isinstance(message.get("content"), str) else ""
    calls = [canonical.tool_call(canonical.call_id(), name, args) for name, args in tool_calls_from(message)]
    usage = usage_from(data)
    body = canonical.completion_body(
        model=str(data.get("model") or model),
        content=text,
        tool_calls=calls,
        finish_reason=finish_reason(data.get("done_reason"), bool(calls)),
        usage=usage,
        reasoning=thinking_from(message),
        logprobs=logprobs_from(data),
        legacy_functions=legacy_functions,
    )
    return Completion(body=body, usage=usage, text=text)


def thinking_from(message: Mapping[str, Any]) -> str:
    thinking = message.get("thinking")
    return thinking if isinstance(thinking, str) else ""


def logprobs_from(data: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Ollama's ``logprobs`` (``token``, ``logprob``, ``bytes``, ``top_logprobs``) as OpenAI's
    ``choices[].logprobs.content``; None when the answer has none."""
    entries = data.get("logprobs")
    if not isinstance(entries, list):
        return None
    out = []
    for entry in entries:
        if isinstance(entry, Mapping):
            alternatives = entry.get("top_logprobs")
            top = (
                [_token_logprob(alt) for alt in alternatives if isinstance(alt, Mapping)]
                if isinstance(alternatives, list)
                else []
            )
            out.append({**_token_logprob(entry), "top_logprobs": top})
    return out


def _token_logprob(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One token: Ollama leaves out a zero ``logprob`` and may leave out ``bytes`` (the token's UTF-8 bytes)."""
    token = str(entry.get("token") or "")
    logprob = entry.get("logprob")
    raw = entry.get("bytes")
    encoded = raw if isinstance(raw, list) and all(isinstance(b, int) for b in raw) else list(token.encode())
    return {"token": token, "logprob": float(logprob) if isinstance(logprob, int | float) else 0.0, "bytes": encoded}


def model_ids(data: Any) -> list[str]:
    """Model names from ``/api/tags`` (``models[].name``, or ``model`` in newer answers)."""
    items = data.get("models") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        return []
    names = (m.get("name") or m.get("model") for m in items if isinstance(m, Mapping))
    return [str(name) for name in names if name]


def embedding_result(data: Any, count: int, deployment: str) -> EmbeddingResult:
    """The vectors of an ``/api/embed`` answer and its ``prompt_eval_count``."""
    tokens = data.get("prompt_eval_count") if isinstance(data, Mapping) else None
    vectors = embeddings_from_response(data, count, deployment)
    return EmbeddingResult(vectors, tokens if isinstance(tokens, int) and tokens > 0 else 0)


def embeddings_from_response(data: Any, count: int, deployment: str) -> list[list[float]]:
    vectors = data.get("embeddings") if isinstance(data, Mapping) else None
    return canonical.embedding_vectors(vectors, count, deployment)


def status_error(status: int, body: bytes, deployment: str, retry_after: float | None, redact: Redact) -> UpstreamError:
    """Ollama's error answers are ``{"error": "message"}``; a 404 means the model is not pulled there."""
    code = "model_not_found" if status == 404 else None
    return errors.status_error(status, body, deployment, retry_after, redact, code=code)


def stream_error(message: Any, deployment: str) -> UpstreamError:
    """An ``{"error": ...}`` line in the middle of a stream (e.g. the model runner died): detail for the log."""
    return stream_failure(deployment, message)
