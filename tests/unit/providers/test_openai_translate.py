"""The OpenAI-compatible translation: bodies pass as they are, with the few exceptions it makes."""

from __future__ import annotations

from typing import Any

import orjson

from ailb.contract import Usage
from ailb.providers.openai import request, response
from ailb.providers.openai.stream import chunk_from_event

CUSTOM = {"type": "custom", "custom": {"name": "run_sql", "format": {"type": "text"}}}
ALLOWED = {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [CUSTOM]}}


def sent(body: dict[str, Any], stream: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(request.request_body(body, "gpt-x", stream))
    return out


def test_current_tool_shapes_and_reasoning_fields_pass_unchanged() -> None:
    body = {
        "model": "public",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Yo", "reasoning_content": "r"},
        ],
        "tools": [CUSTOM],
        "tool_choice": ALLOWED,
        "reasoning_effort": "low",
        "n": 2,
        "logprobs": True,
    }
    assert sent(body) == {**body, "model": "gpt-x"}


def test_thinking_blocks_are_anthropics_only_and_not_sent() -> None:
    signed = [{"type": "thinking", "thinking": "r", "signature": "s"}]
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Yo", "reasoning_content": "r", "thinking_blocks": signed},
    ]
    out = sent({"model": "public", "messages": messages})
    assert out["messages"] == [messages[0], {"role": "assistant", "content": "Yo", "reasoning_content": "r"}]
    assert messages[1]["thinking_blocks"] == signed  # the client's body is left alone


def test_reasoning_deltas_commit_the_stream() -> None:
    event = {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"reasoning_content": "hm"}}],
    }
    chunk = chunk_from_event(orjson.dumps(event), False, "dep")
    assert chunk.has_content and chunk.text == ""


def test_cached_prompt_tokens_are_read() -> None:
    usage = {"prompt_tokens": 100, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 64}}
    assert response.usage_from(usage) == Usage(100, 5, cache_read_tokens=64)
    assert response.usage_from({"prompt_tokens": 3, "completion_tokens": 1}) == Usage(3, 1)
