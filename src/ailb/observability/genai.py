"""Span attributes of the OpenTelemetry GenAI semantic conventions, computed from AILB's own types.

Pure functions, no OpenTelemetry import: the request parameters a client set, token usage, and the
``gen_ai.input.messages`` / ``gen_ai.output.messages`` structures (role and typed parts) recorded when message
content capture is on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ailb.contract import Usage, message_text
from ailb.observability.tracing import AttributeValue

# OpenAI request field → GenAI attribute (the first field present wins: max_completion_tokens over max_tokens)
_NUMERIC_PARAMETERS = (
    ("max_completion_tokens", "gen_ai.request.max_tokens"),
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
    ("seed", "gen_ai.request.seed"),
    ("n", "gen_ai.request.choice.count"),
)


def request_parameters(body: Mapping[str, Any]) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {}
    for field, attribute in _NUMERIC_PARAMETERS:
        value = body.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes.setdefault(attribute, value)
    stop = body.get("stop")
    if isinstance(stop, str):
        attributes["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        attributes["gen_ai.request.stop_sequences"] = stop
    if isinstance(body.get("stream"), bool):
        attributes["ailb.stream"] = body["stream"]
    return attributes


def usage_attributes(usage: Usage | None) -> dict[str, AttributeValue]:
    if usage is None:
        return {}
    return {"gen_ai.usage.input_tokens": usage.prompt_tokens, "gen_ai.usage.output_tokens": usage.completion_tokens}


def input_messages(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """OpenAI chat messages as GenAI input messages: ``[{"role", "parts": [{"type", ...}]}]``."""
    found = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = str(message.get("role", ""))
        text = message_text(message.get("content"))
        parts: list[dict[str, Any]] = []
        if role == "tool":
            parts.append({"type": "tool_call_response", "id": message.get("tool_call_id"), "response": text})
        elif text:
            parts.append({"type": "text", "content": text})
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                parts.append(
                    {
                        "type": "tool_call",
                        "id": call.get("id"),
                        "name": function.get("name"),
                        "arguments": function.get("arguments"),
                    }
                )
        found.append({"role": role, "parts": parts})
    return found


def output_messages(text: str, finish_reasons: Sequence[str]) -> list[dict[str, Any]]:
    message: dict[str, Any] = {"role": "assistant", "parts": [{"type": "text", "content": text}] if text else []}
    if finish_reasons:
        message["finish_reason"] = finish_reasons[0]
    return [message]
