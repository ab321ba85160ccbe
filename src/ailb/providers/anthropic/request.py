"""Pure translation of a canonical (OpenAI) chat request into an Anthropic Messages API request.

Answers and errors are in ``response``, streamed events in ``stream``; tools in ``tools``, reasoning in
``thinking``. Where the two APIs differ:

- ``system`` and ``developer`` messages, wherever they stand, become the top-level ``system`` (in order).
- ``max_tokens`` is required upstream: the request's ``max_completion_tokens``/``max_tokens``, else the
  deployment's ``default_max_tokens`` (plus the reasoning budget when ``reasoning_effort`` asks for thinking).
- ``temperature`` is clamped to Anthropic's 0..1; ``top_p`` is sent only without ``temperature`` (current
  Claude models reject both together); neither is sent while Claude thinks. ``stop`` becomes
  ``stop_sequences``, minus whitespace-only sequences (which Anthropic rejects); ``user`` becomes
  ``metadata.user_id``.
- ``response_format`` ``json_object``/``json_schema`` is honoured with a system instruction asking for JSON
  only (with the schema when given): Anthropic has no JSON mode, and an instruction keeps such requests
  working instead of failing them.
- Content Anthropic cannot take (audio, non-PDF files), custom tools and custom tool calls are rejected with
  ``InvalidRequestError``; ``n > 1`` is the adapter's (one upstream call per choice); sampling hints without an
  Anthropic equivalent (``seed``, penalties, ``logit_bias``, ``logprobs``) are dropped, as the README lists.
- Consecutive messages of one role are merged (Anthropic requires alternation) and a conversation that
  opens with the assistant gets a minimal user turn in front; ``tool`` messages become ``tool_result``
  blocks in a user turn; legacy ``function_call`` / ``function`` messages become a ``tool_use`` and its result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ailb.contract import message_text
from ailb.errors import InvalidRequestError
from ailb.providers import canonical, tooling
from ailb.providers.anthropic.thinking import thinking_and_max_tokens, thinking_blocks
from ailb.providers.anthropic.tools import tool_fields
from ailb.providers.tooling import tool_request

ANTHROPIC_VERSION = "2023-06-01"
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
OPENING_USER_TEXT = "(conversation continues)"
JSON_INSTRUCTION = "Respond with a single valid JSON object and nothing else: no prose, no code fences."


def request_body(body: Mapping[str, Any], model: str, stream: bool, default_max_tokens: int) -> bytes:
    return orjson.dumps(build_request(body, model, stream, default_max_tokens))


def build_request(body: Mapping[str, Any], model: str, stream: bool, default_max_tokens: int) -> dict[str, Any]:
    """The Anthropic Messages request for the OpenAI chat request ``body``."""
    canonical.reject_multiple_choices(body)
    tools = tool_request(body)
    system, messages = convert_messages(body["messages"])
    instruction = _format_instruction(body.get("response_format"))
    if instruction:
        system.append(instruction)
    requested = body.get("max_completion_tokens") or body.get("max_tokens")
    reasoning, max_tokens = thinking_and_max_tokens(
        body.get("reasoning_effort"), requested if isinstance(requested, int) else None, default_max_tokens
    )
    out: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages}
    if system:
        out["system"] = "\n\n".join(system)
    if stream:
        out["stream"] = True
    if reasoning is not None:
        out["thinking"] = reasoning
    elif isinstance(body.get("temperature"), int | float):
        out["temperature"] = min(max(float(body["temperature"]), 0.0), 1.0)
    elif isinstance(body.get("top_p"), int | float):
        out["top_p"] = body["top_p"]
    stop = [s for s in canonical.stop_list(body.get("stop")) or () if s.strip()]
    if stop:
        out["stop_sequences"] = stop
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}
    out.update(tool_fields(tools, thinking=reasoning is not None))
    return out


def convert_messages(messages: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """``(system_texts, anthropic_messages)``: roles alternate, starting with the user."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    legacy_calls: dict[str, list[str]] = {}  # function name -> ids of legacy calls awaiting their result
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
            turn_role, blocks = "assistant", _assistant_blocks(message, legacy_calls)
        elif role == "tool":
            turn_role, blocks = "user", [_tool_result(message, str(message.get("tool_call_id", "")))]
        elif role == "function":
            turn_role, blocks = "user", [_tool_result(message, _legacy_call_id(message, legacy_calls))]
        else:
            raise InvalidRequestError(f"Messages with role '{role}' are not supported.", param="messages")
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


def _assistant_blocks(message: Mapping[str, Any], legacy_calls: dict[str, list[str]]) -> list[dict[str, Any]]:
    tooling.reject_custom_tool_calls(message)
    blocks = thinking_blocks(message)
    for part in canonical.content_parts(message.get("content")):
        text = part.get("text") or part.get("refusal")
        if _has_text(text):
            blocks.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        blocks.append(_tool_use(call.get("id") or canonical.call_id(), function))
    legacy = message.get("function_call")
    if isinstance(legacy, Mapping):
        call_id = canonical.call_id()
        legacy_calls.setdefault(str(legacy.get("name") or ""), []).append(call_id)
        blocks.append(_tool_use(call_id, legacy))
    return blocks


def _tool_use(call_id: str, function: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": call_id,
        "name": function.get("name", ""),
        "input": canonical.arguments_object(function.get("arguments")),
    }


def _legacy_call_id(message: Mapping[str, Any], legacy_calls: dict[str, list[str]]) -> str:
    """The id given to the legacy ``function_call`` a ``function`` message answers (matched by name)."""
    waiting = legacy_calls.get(str(message.get("name") or ""))
    if not waiting:
        raise InvalidRequestError(
            f"The function message for '{message.get('name')}' answers no earlier function_call.", param="messages"
        )
    return waiting.pop(0)


def _tool_result(message: Mapping[str, Any], tool_use_id: str) -> dict[str, Any]:
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id}
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
