"""Pure translation of a canonical (OpenAI) chat request into an Anthropic Messages API request.

Answers and errors are in ``response``, streamed events in ``stream``. Where the two APIs differ:

- ``system`` and ``developer`` messages, wherever they stand, become the top-level ``system`` (in order).
- ``max_tokens`` is required upstream: the request's ``max_completion_tokens``/``max_tokens``, else the
  deployment's ``default_max_tokens``.
- ``temperature`` is clamped to Anthropic's 0..1; ``top_p`` is sent only without ``temperature`` (current
  Claude models reject both together); ``stop`` becomes ``stop_sequences``, minus whitespace-only sequences
  (which Anthropic rejects); ``user`` becomes ``metadata.user_id``; ``parallel_tool_calls: false`` becomes
  ``disable_parallel_tool_use``.
- ``response_format`` ``json_object``/``json_schema`` is honoured with a system instruction asking for JSON
  only (with the schema when given): Anthropic has no JSON mode, and an instruction keeps such requests
  working instead of failing them.
- ``n > 1`` and content Anthropic cannot take (audio, non-PDF files) are rejected with
  ``InvalidRequestError``; sampling hints without an Anthropic equivalent (``seed``, penalties,
  ``logit_bias``, ``logprobs``) are dropped.
- Consecutive messages of one role are merged (Anthropic requires alternation) and a conversation that
  opens with the assistant gets a minimal user turn in front; ``tool`` messages become ``tool_result``
  blocks in a user turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ailb.errors import InvalidRequestError
from ailb.providers import canonical
from ailb.types import message_text

ANTHROPIC_VERSION = "2023-06-01"
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
OPENING_USER_TEXT = "(conversation continues)"
JSON_INSTRUCTION = "Respond with a single valid JSON object and nothing else: no prose, no code fences."


def request_body(body: Mapping[str, Any], model: str, stream: bool, default_max_tokens: int) -> bytes:
    return orjson.dumps(build_request(body, model, stream, default_max_tokens))


def build_request(body: Mapping[str, Any], model: str, stream: bool, default_max_tokens: int) -> dict[str, Any]:
    """The Anthropic Messages request for the OpenAI chat request ``body``."""
    canonical.reject_multiple_choices(body)
    system, messages = convert_messages(body["messages"])
    instruction = _format_instruction(body.get("response_format"))
    if instruction:
        system.append(instruction)
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    out: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages}
    if system:
        out["system"] = "\n\n".join(system)
    if stream:
        out["stream"] = True
    if isinstance(body.get("temperature"), int | float):
        out["temperature"] = min(max(float(body["temperature"]), 0.0), 1.0)
    elif isinstance(body.get("top_p"), int | float):
        out["top_p"] = body["top_p"]
    stop = [s for s in canonical.stop_list(body.get("stop")) or () if s.strip()]
    if stop:
        out["stop_sequences"] = stop
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}
    tools = body.get("tools")
    if tools:
        out["tools"] = [_tool(t) for t in tools]
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    return out


def convert_messages(messages: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """``(system_texts, anthropic_messages)``: roles alternate, starting with the user."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            text = message_text(message.get("content"))
            if _has_text(text):
                system.append(text)
            continue
        if role == "user":
            turn_role, blocks = "user", _user_blocks(message.get("content"))
        elif role == "assistant":
            turn_role, blocks = "assistant", _assistant_blocks(message)
        elif role == "tool":
            turn_role, blocks = "user", [_tool_result(message)]
        else:
            raise InvalidRequestError(
                f"Messages with role '{role}' are not supported by this deployment; use tools.",
                param="messages",
            )
        if not blocks:
            continue
        if turns and turns[-1]["role"] == turn_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": turn_role, "content": blocks})
    if not turns:
        raise InvalidRequestError("The request needs at least one user message.", param="messages")
    if turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": OPENING_USER_TEXT}]})
    _strip_trailing_whitespace(turns[-1])
    return system, turns


def _user_blocks(content: Any) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in canonical.content_parts(content):
        kind = part.get("type")
        if kind == "text":
            if _has_text(part.get("text")):
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image_block(part.get("image_url") or {}))
        elif kind == "file":
            blocks.append(_document_block(part.get("file") or {}))
        else:
            raise InvalidRequestError(
                f"Content of type '{kind}' is not supported by this deployment.", param="messages"
            )
    return blocks


def _image_block(image_url: Mapping[str, Any]) -> dict[str, Any]:
    url = str(image_url.get("url") or "")
    parsed = canonical.parse_data_url(url)
    if parsed is not None:
        media_type, data = parsed
        if media_type not in IMAGE_MEDIA_TYPES:
            raise InvalidRequestError(f"Images of type '{media_type}' are not supported.", param="messages")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequestError("Image URLs must be http(s) or base64 data URLs.", param="messages")


def _document_block(file: Mapping[str, Any]) -> dict[str, Any]:
    parsed = canonical.parse_data_url(str(file.get("file_data") or ""))
    if parsed is None or parsed[0] != "application/pdf":
        raise InvalidRequestError("Only PDF files given as base64 data are supported here.", param="messages")
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": parsed[1]},
    }


def _assistant_blocks(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in canonical.content_parts(message.get("content")):
        text = part.get("text") or part.get("refusal")
        if _has_text(text):
            blocks.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id") or canonical.call_id(),
                "name": function.get("name", ""),
                "input": canonical.arguments_object(function.get("arguments")),
            }
        )
    return blocks


def _tool_result(message: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.get("tool_call_id", "")}
    text = message_text(message.get("content"))
    if _has_text(text):
        result["content"] = text
    return result


def _strip_trailing_whitespace(turn: dict[str, Any]) -> None:
    """Anthropic rejects a final assistant (prefill) turn that ends in whitespace."""
    if turn["role"] != "assistant":
        return
    last = turn["content"][-1]
    if last.get("type") == "text":
        last["text"] = last["text"].rstrip()


def _has_text(text: Any) -> bool:
    """Anthropic rejects text blocks that are empty or only whitespace."""
    return isinstance(text, str) and not text.isspace() and bool(text)


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
    out: dict[str, Any] = {"name": function.get("name", "")}
    if function.get("description"):
        out["description"] = function["description"]
    out["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice is None:
        out: dict[str, Any] | None = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        out = {"type": "tool", "name": choice["function"].get("name", "")}
    else:
        raise InvalidRequestError("tool_choice must be none, auto, required or a named function.", param="tool_choice")
    if out is not None and parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def _format_instruction(response_format: Any) -> str | None:
    if not isinstance(response_format, Mapping):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return JSON_INSTRUCTION
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if schema:
            return f"{JSON_INSTRUCTION} It must conform to this JSON schema:\n{orjson.dumps(schema).decode()}"
        return JSON_INSTRUCTION
    return None
