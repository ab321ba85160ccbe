"""Pure translation of an OpenAI-compatible upstream's answers and errors: almost nothing, the canonical form
is OpenAI's."""

from __future__ import annotations

from typing import Any

from ailb.contract import Completion, EmbeddingResult, Usage
from ailb.errors import UpstreamError, UpstreamProtocolError
from ailb.providers import errors
from ailb.providers.canonical import embedding_vectors
from ailb.providers.errors import Redact


def usage_from(data: Any) -> Usage:
    if not isinstance(data, dict):
        return Usage()
    details = data.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        int(data.get("prompt_tokens") or 0),
        int(data.get("completion_tokens") or 0),
        cached if isinstance(cached, int) and cached > 0 else 0,
    )


def completion_from_response(data: Any, deployment: str, raw: bytes | None = None) -> Completion:
    """The answer as it came (``raw``, when given, is passed to the client as it is)."""
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise UpstreamProtocolError(
            f"Deployment '{deployment}' returned a body without choices.", deployment=deployment
        )
    choices = data["choices"]
    message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
    text = message.get("content") if isinstance(message, dict) else None
    text = text if isinstance(text, str) else ""
    return Completion(body=data, usage=usage_from(data.get("usage")), text=text, raw=raw)


def model_ids(data: Any) -> list[str]:
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return []
    return [str(m["id"]) for m in items if isinstance(m, dict) and m.get("id")]


def embedding_result(data: Any, count: int, deployment: str) -> EmbeddingResult:
    """The vectors of an OpenAI ``/embeddings`` answer and the prompt tokens it reports."""
    usage = data.get("usage") if isinstance(data, dict) else None
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    vectors = embeddings_from_response(data, count, deployment)
    return EmbeddingResult(vectors, tokens if isinstance(tokens, int) and tokens > 0 else 0)


def embeddings_from_response(data: Any, count: int, deployment: str) -> list[list[float]]:
    """The vectors of an OpenAI ``/embeddings`` answer, in input order."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise UpstreamProtocolError(f"Deployment '{deployment}' returned no embeddings.", deployment=deployment)
    ordered = sorted(items, key=lambda item: item.get("index") if isinstance(item.get("index"), int) else 0)
    return embedding_vectors([item.get("embedding") for item in ordered], count, deployment)


def status_error(status: int, body: bytes, deployment: str, retry_after: float | None, redact: Redact) -> UpstreamError:
    """OpenAI's error answers are the canonical shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return errors.status_error(status, body, deployment, retry_after, redact)
