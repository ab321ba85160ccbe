"""A canonical chat completion as a Responses API ``response`` object, and the pieces streams share (pure).

Output items, in order: a ``reasoning`` item when the model reasoned (its text as ``reasoning_text`` content,
and as the summary when the request asked for one; Claude's signed thinking in ``encrypted_content``), a
``message`` with the text (or the refusal), then one ``function_call`` per tool call. A completion cut by its
token limit or by a content filter is ``incomplete`` with the reason.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from ailb.contract import Completion, Usage
from ailb.ingress.canonical import first_message, mapping, text
from ailb.ingress.responses.request import ResponseSpec, encrypt_thinking

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def shell(spec: ResponseSpec, response_id: str, created_at: int, status: str) -> dict[str, Any]:
    """The ``response`` object around its output: everything the request decided."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": spec.instructions,
        "max_output_tokens": spec.max_output_tokens,
        "metadata": spec.metadata,
        "model": spec.model,
        "output": [],
        "parallel_tool_calls": spec.parallel_tool_calls,
        "previous_response_id": None,
        "reasoning": spec.reasoning,
        "store": False,
        "temperature": spec.temperature,
        "text": spec.text,
        "tool_choice": spec.tool_choice,
        "tools": spec.tools,
        "top_p": spec.top_p,
        "truncation": "disabled",
        "usage": None,
        "user": spec.user,
    }


def finished(
    body: dict[str, Any], output: list[dict[str, Any]], finish_reason: str | None, usage: dict[str, Any]
) -> dict[str, Any]:
    """``body`` (a shell) completed with its output, status and usage."""
    reason = INCOMPLETE.get(finish_reason or "")
    body["status"] = "incomplete" if reason else "completed"
    body["incomplete_details"] = {"reason": reason} if reason else None
    body["output"] = output
    body["usage"] = usage
    return body


def usage_of(usage: Usage | None, reasoning_tokens: int = 0) -> dict[str, Any]:
    usage = usage or Usage()
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def message_item(item_id: str, content: str, refusal: str | None, status: str = "completed") -> dict[str, Any]:
    part = (
        {"type": "refusal", "refusal": refusal}
        if refusal
        else {"type": "output_text", "text": content, "annotations": [], "logprobs": []}
    )
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": [part]}


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def reasoning_item(item_id: str, reasoning: str, blocks: list[dict[str, Any]], summarize: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "reasoning",
        "id": item_id,
        "summary": [{"type": "summary_text", "text": reasoning}] if summarize and reasoning else [],
        "content": [{"type": "reasoning_text", "text": reasoning}] if reasoning else [],
        "status": "completed",
    }
    if blocks:
        item["encrypted_content"] = encrypt_thinking(blocks)
    return item


def from_completion(completion: Completion, spec: ResponseSpec) -> dict[str, Any]:
    """The ``response`` object for a whole canonical answer."""
    choice, message = first_message(completion.body)
    output: list[dict[str, Any]] = []
    reasoning = text(message.get("reasoning_content")) or text(message.get("reasoning"))
    blocks = [block for block in message.get("thinking_blocks") or () if isinstance(block, dict)]
    if reasoning or blocks:
        output.append(reasoning_item(new_id("rs"), reasoning, blocks, spec.summarize))
    calls = [call for call in message.get("tool_calls") or () if isinstance(call, Mapping)]
    content, refusal = text(message.get("content")), text(message.get("refusal"))
    if content or refusal or not calls:
        output.append(message_item(new_id("msg"), content, refusal or None))
    for call in calls:
        function = mapping(call.get("function"))
        output.append(
            function_call_item(
                new_id("fc"), str(call.get("id") or new_id("call")), str(function.get("name") or ""),
                str(function.get("arguments") or "{}"),
            )
        )  # fmt: skip
    body = shell(spec, new_id("resp"), int(time.time()), "completed")
    usage = usage_of(completion.usage, reasoning_tokens(completion.body.get("usage")))
    return finished(body, output, choice.get("finish_reason"), usage)


def reasoning_tokens(usage: Any) -> int:
    """``completion_tokens_details.reasoning_tokens`` of an OpenAI usage, when the upstream reported it."""
    details = usage.get("completion_tokens_details") if isinstance(usage, Mapping) else None
    count = details.get("reasoning_tokens") if isinstance(details, Mapping) else None
    return count if isinstance(count, int) and count > 0 else 0
