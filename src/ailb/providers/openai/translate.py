"""Pure translation between the canonical (OpenAI) form and an OpenAI-compatible upstream: almost nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ailb.errors import UpstreamError, UpstreamProtocolError
from ailb.providers.canonical import embedding_vectors
from ailb.types import Completion, StreamChunk, Usage

_STREAM_OPTIONS = {"include_usage": True}


def request_body(body: Mapping[str, Any], model: str, stream: bool) -> bytes:
    """The upstream request: the client's body with the upstream model name; streams always ask for usage."""
    out = dict(body)
    out["model"] = model
    if stream:
        out["stream"] = True
        out["stream_options"] = _STREAM_OPTIONS
    else:
        out.pop("stream", None)
        out.pop("stream_options", None)
    return orjson.dumps(out)


def usage_from(data: Any) -> Usage:
    if not isinstance(data, dict):
        return Usage()
    return Usage(int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0))


def completion_from_response(data: Any, deployment: str) -> Completion:
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise UpstreamProtocolError(
            f"Deployment '{deployment}' returned a body without choices.", deployment=deployment
        )
    choices = data["choices"]
    message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
    text = message.get("content") if isinstance(message, dict) else None
    return Completion(body=data, usage=usage_from(data.get("usage")), text=text if isinstance(text, str) else "")


def chunk_from_event(data: bytes, include_usage: bool, deployment: str) -> StreamChunk:
    """Read what the gateway needs from one upstream chunk and pass its bytes through untouched."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError(
            f"Deployment '{deployment}' sent a stream chunk that is not JSON.", deployment=deployment
        ) from exc
    if not isinstance(obj, dict):
        raise UpstreamProtocolError(f"Deployment '{deployment}' sent a malformed chunk.", deployment=deployment)
    if "error" in obj:
        err = obj["error"]
        message = err.get("message") if isinstance(err, dict) else str(err)
        raise UpstreamError(f"Deployment '{deployment}' failed mid-stream: {message}", deployment=deployment)
    choices = obj.get("choices") or []
    usage = usage_from(obj["usage"]) if obj.get("usage") else None
    text = ""
    has_content = False
    finish_reason = None
    for choice in choices:
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content:
            text += content if choice.get("index", 0) == 0 else ""
            has_content = True
        if delta.get("tool_calls") or delta.get("refusal") or delta.get("function_call"):
            has_content = True
        finish_reason = choice.get("finish_reason") or finish_reason
    frame = b"data: " + data + b"\n\n"
    if not choices and usage is not None and not include_usage:
        frame = b""
    return StreamChunk(frame=frame, text=text, has_content=has_content, usage=usage, finish_reason=finish_reason)


def model_ids(data: Any) -> list[str]:
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return []
    return [str(m["id"]) for m in items if isinstance(m, dict) and m.get("id")]


def embed_request(texts: Sequence[str], model: str) -> bytes:
    return orjson.dumps({"model": model, "input": list(texts), "encoding_format": "float"})


def embeddings_from_response(data: Any, count: int, deployment: str) -> list[list[float]]:
    """The vectors of an OpenAI ``/embeddings`` answer, in input order."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise UpstreamProtocolError(f"Deployment '{deployment}' returned no embeddings.", deployment=deployment)
    ordered = sorted(items, key=lambda item: item.get("index") if isinstance(item.get("index"), int) else 0)
    return embedding_vectors([item.get("embedding") for item in ordered], count, deployment)
