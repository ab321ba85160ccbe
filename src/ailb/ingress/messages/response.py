"""A canonical chat completion as an Anthropic ``message`` (pure), for answers from other providers.

Content blocks, in order: thinking (when the request asked for it: Claude's signed blocks as they are, other
providers' reasoning as a ``thinking`` block with an empty signature), the text, then one ``tool_use`` per tool
call. ``finish_reason`` becomes ``stop_reason`` (``stop`` → ``end_turn``, ``length`` → ``max_tokens``,
``tool_calls`` → ``tool_use``, ``content_filter`` → ``refusal``); which stop sequence ended the text is not
known to other providers, so ``stop_sequence`` stays null. Usage is split the Anthropic way: ``input_tokens``
without the prompt-cache reads and writes, which are counted apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from ailb.contract import Completion, Usage
from ailb.errors import UpstreamProtocolError
from ailb.ingress.canonical import first_message, mapping, text
from ailb.ingress.messages.request import MessagesSpec

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def message_id() -> str:
    return "msg_" + uuid.uuid4().hex


def stop_reason(finish_reason: str | None) -> str:
    return STOP_REASONS.get(finish_reason or "stop", "end_turn")


def usage_of(usage: Usage | None) -> dict[str, int]:
    usage = usage or Usage()
    uncached = max(0, usage.prompt_tokens - usage.cache_read_tokens - usage.cache_write_tokens)
    return {
        "input_tokens": uncached,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.completion_tokens,
    }


def tool_input(arguments: Any, deployment: str) -> dict[str, Any]:
    """A tool call's JSON arguments as the ``input`` object of a ``tool_use`` block."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise UpstreamProtocolError(
            f"Deployment '{deployment}' returned tool arguments that are not a JSON object.", deployment=deployment
        )
    return value


def thinking_blocks(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    signed = [block for block in message.get("thinking_blocks") or () if isinstance(block, dict)]
    if signed:
        return signed
    reasoning = text(message.get("reasoning_content")) or text(message.get("reasoning"))
    if not reasoning:
        return []
    return [{"type": "thinking", "thinking": reasoning, "signature": ""}]


def message_from_completion(completion: Completion, spec: MessagesSpec, deployment: str) -> Completion:
    choice, message = first_message(completion.body)
    content: list[dict[str, Any]] = thinking_blocks(message) if spec.thinking else []
    answer = text(message.get("content")) or text(message.get("refusal"))
    if answer:
        content.append({"type": "text", "text": answer})
    for call in [call for call in message.get("tool_calls") or () if isinstance(call, Mapping)]:
        function = mapping(call.get("function"))
        content.append({
            "type": "tool_use",
            "id": str(call.get("id") or "toolu_" + uuid.uuid4().hex[:24]),
            "name": str(function.get("name") or ""),
            "input": tool_input(function.get("arguments"), deployment),
        })  # fmt: skip
    body = {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": spec.model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": usage_of(completion.usage),
    }
    return Completion(body=body, usage=completion.usage, text=completion.text)
