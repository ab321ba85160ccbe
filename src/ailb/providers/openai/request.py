"""Pure translation of a canonical (OpenAI) chat request for an OpenAI-compatible upstream: almost nothing.

Every field passes as the client sent it (custom tools, ``allowed_tools``, ``reasoning_effort``, ``n``,
``logprobs``, legacy ``functions``...), except the gateway's own ``thinking_blocks`` on assistant messages:
Claude's signed reasoning, which carries meaning for Anthropic deployments only (``reasoning_content`` is the
OpenAI-compatible servers' own convention and passes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

_STREAM_OPTIONS = {"include_usage": True}


def request_body(body: Mapping[str, Any], model: str, stream: bool) -> bytes:
    """The upstream request: the client's body with the upstream model name; streams always ask for usage."""
    out = dict(body)
    out["model"] = model
    messages = out.get("messages")
    if isinstance(messages, list) and any(isinstance(m, dict) and "thinking_blocks" in m for m in messages):
        out["messages"] = [_without_thinking_blocks(m) for m in messages]
    if stream:
        out["stream"] = True
        out["stream_options"] = _STREAM_OPTIONS
    else:
        out.pop("stream", None)
        out.pop("stream_options", None)
    return orjson.dumps(out)


def _without_thinking_blocks(message: Any) -> Any:
    if isinstance(message, dict) and "thinking_blocks" in message:
        return {key: value for key, value in message.items() if key != "thinking_blocks"}
    return message


def embed_request(texts: Sequence[str], model: str) -> bytes:
    return orjson.dumps({"model": model, "input": list(texts), "encoding_format": "float"})
