"""Pure translation of a canonical (OpenAI) chat request for an OpenAI-compatible upstream: almost nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

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


def embed_request(texts: Sequence[str], model: str) -> bytes:
    return orjson.dumps({"model": model, "input": list(texts), "encoding_format": "float"})
