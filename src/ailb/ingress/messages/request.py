"""An Anthropic Messages request: passed through to Anthropic deployments, translated for the others (pure).

The request is checked once (``MessagesRequest``); AILB's own fields are split off. An Anthropic deployment
then gets the client's body as it is — every block, ``cache_control`` included — with only the upstream model
name, the stream flag and what memory and RAG add (text blocks after the client's ``system``) changed.

For OpenAI-compatible and Ollama deployments it becomes the canonical chat request:
- ``system`` (a string or text blocks) is the system message; ``cache_control`` marks are dropped (a
  caching hint only Anthropic reads);
- user blocks: ``text``; ``image`` (base64 or URL) as ``image_url``; ``document`` (base64 PDF) as ``file``;
  ``tool_result`` blocks become ``tool`` messages ahead of the user's other content (``is_error`` results
  start with ``Error:``; their content must be text);
- assistant blocks: ``text``; ``tool_use`` as ``tool_calls``; ``thinking``/``redacted_thinking`` as the
  signed ``thinking_blocks``;
- ``tools`` (custom tools: ``name``, ``description``, ``input_schema``, ``strict``) as function tools;
  ``tool_choice`` ``auto``/``any``/``tool``/``none`` as ``auto``/``required``/the named function/``none``, and
  ``disable_parallel_tool_use`` as ``parallel_tool_calls: false``;
- ``max_tokens`` as ``max_completion_tokens``, ``stop_sequences`` as ``stop``, ``metadata.user_id`` as
  ``user``, ``thinking`` (a budget) as ``reasoning_effort`` (≤ 2048 tokens ``low``, ≤ 8192 ``medium``, more
  ``high``); ``temperature`` and ``top_p`` as they are.
What cannot be translated — server tools (web search, bash, text editor …), ``top_k``, ``container``,
``mcp_servers``, other block types, unknown fields — makes those deployments unfit for the request: it goes to
an Anthropic deployment of the model, or is refused with a 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ailb.contract import ChatCall, message_text
from ailb.errors import InvalidRequestError
from ailb.ingress.messages.schema import ANTHROPIC_ONLY, HINTS, MESSAGES_FIELDS, MessageParam, MessagesRequest
from ailb.ingress.validation import AILB_FIELDS, ailb_options, convert, refuse_client_config, unsupported

EFFORT_BUDGETS = ((2048, "low"), (8192, "medium"))  # thinking budget up to N tokens -> reasoning effort
MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


@dataclass(frozen=True, slots=True)
class MessagesSpec:
    """What an answer in the Messages format needs to know of its request."""

    model: str
    thinking: bool  # the client asked for thinking blocks


@dataclass(frozen=True, slots=True)
class Translation:
    """The request for every provider: ``native`` for Anthropic (the client's body without AILB's fields);
    ``body`` the canonical chat request, or — when ``refusal`` says why it cannot be one — its text only (for
    memory, RAG and token counts)."""

    native: dict[str, Any]
    body: dict[str, Any]
    refusal: InvalidRequestError | None


def parse(data: dict[str, Any], tenant: str, headers: Mapping[str, str]) -> tuple[ChatCall, Translation, MessagesSpec]:
    refuse_client_config(data.keys() - MESSAGES_FIELDS)
    request = convert(data, MessagesRequest)
    options = ailb_options(request, headers)
    native = {key: value for key, value in data.items() if key not in AILB_FIELDS}
    translation = translate(native, request)
    call = options.call(translation.body, request.model, bool(request.stream), tenant)
    thinking = request.thinking is not None and request.thinking.type != "disabled"
    return call, translation, MessagesSpec(request.model, thinking)


def translate(native: Mapping[str, Any], request: MessagesRequest) -> Translation:
    try:
        return Translation(dict(native), canonical_body(native, request), None)
    except InvalidRequestError as exc:
        return Translation(dict(native), text_only_body(request), exc)


def canonical_body(native: Mapping[str, Any], request: MessagesRequest) -> dict[str, Any]:
    given = {name for name, value in native.items() if value is not None}
    for name in sorted((given - MESSAGES_FIELDS - HINTS) | (given & ANTHROPIC_ONLY)):
        raise unsupported(name, "only Anthropic deployments take it")
    messages = [{"role": "system", "content": text} for text in [system_text(request.system, strict=True)] if text]
    for index, message in enumerate(request.messages):
        messages.extend(_turn(message, f"messages[{index}]"))
    body: dict[str, Any] = {"model": request.model, "messages": messages, "max_completion_tokens": request.max_tokens}
    for name in ("temperature", "top_p"):
        if getattr(request, name) is not None:
            body[name] = getattr(request, name)
    if request.stop_sequences:
        body["stop"] = request.stop_sequences
    if request.metadata is not None and request.metadata.user_id:
        body["user"] = request.metadata.user_id
    if request.tools:
        body["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(request.tools)]
    if request.tool_choice is not None:
        _tool_choice(request, body)
    effort = reasoning_effort(request)
    if effort is not None:
        body["reasoning_effort"] = effort
    return body


def text_only_body(request: MessagesRequest) -> dict[str, Any]:
    """The conversation's text, for memory, RAG and token counts when the request cannot be translated."""
    messages = [{"role": "system", "content": text} for text in [system_text(request.system)] if text]
    messages += [{"role": m.role, "content": _blocks_text(m.content)} for m in request.messages]
    return {"model": request.model, "messages": messages, "max_completion_tokens": request.max_tokens}


def system_text(system: str | Sequence[Mapping[str, Any]] | None, *, strict: bool = False) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    for index, block in enumerate(system):
        if strict and block.get("type") != "text":
            raise unsupported(f"system[{index}].type", "only text blocks can be translated")
    return "\n\n".join(str(block.get("text") or "") for block in system if block.get("type") == "text")


def _blocks_text(content: str | list[dict[str, Any]]) -> str:
    if isinstance(content, str):
        return content
    return "".join(str(block.get("text") or "") for block in content if block.get("type") == "text")


def _turn(message: MessageParam, at: str) -> list[dict[str, Any]]:
    if isinstance(message.content, str):
        return [{"role": message.role, "content": message.content}]
    if message.role == "assistant":
        return [_assistant(message.content, at)]
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for index, block in enumerate(message.content):
        where = f"{at}.content[{index}]"
        kind = block.get("type")
        if kind == "tool_result":
            tool_messages.append(_tool_result(block, where))
        elif kind == "text":
            parts.append({"type": "text", "text": _text(block, where)})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block.get("source"), where)}})
        elif kind == "document":
            parts.append({"type": "file", "file": {"file_data": _pdf_data(block.get("source"), where)}})
        else:
            raise unsupported(f"{where}.type", f"{kind!r} blocks can only be sent to Anthropic deployments")
    return [*tool_messages, *([{"role": "user", "content": parts}] if parts else [])]


def _assistant(blocks: list[dict[str, Any]], at: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for index, block in enumerate(blocks):
        where = f"{at}.content[{index}]"
        kind = block.get("type")
        if kind == "text":
            texts.append(_text(block, where))
        elif kind == "tool_use":
            name, call_id = block.get("name"), block.get("id")
            if not isinstance(name, str) or not isinstance(call_id, str) or not isinstance(block.get("input"), dict):
                raise InvalidRequestError("A tool_use block needs id, name and input.", param=where)
            function = {"name": name, "arguments": orjson.dumps(block["input"]).decode()}
            calls.append({"id": call_id, "type": "function", "function": function})
        elif kind in ("thinking", "redacted_thinking"):
            thinking.append({k: v for k, v in block.items() if k in ("type", "thinking", "signature", "data")})
        else:
            raise unsupported(f"{where}.type", f"{kind!r} blocks can only be sent to Anthropic deployments")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["thinking_blocks"] = thinking
    return message


def _text(block: Mapping[str, Any], where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise InvalidRequestError("A text block needs its text.", param=f"{where}.text", code="invalid_value")
    return text


def _tool_result(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str):
        raise InvalidRequestError("A tool_result block needs its tool_use_id.", param=f"{where}.tool_use_id")
    content = block.get("content")
    if isinstance(content, list):
        for index, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise unsupported(f"{where}.content[{index}]", "only text tool results can be translated")
        content = "".join(str(part.get("text") or "") for part in content)
    text = content if isinstance(content, str) else ""
    return {"role": "tool", "tool_call_id": call_id, "content": f"Error: {text}" if block.get("is_error") else text}


def _image_url(source: Any, where: str) -> str:
    if isinstance(source, Mapping) and source.get("type") == "url" and isinstance(source.get("url"), str):
        return str(source["url"])
    if isinstance(source, Mapping) and source.get("type") == "base64" and source.get("media_type") in MEDIA_TYPES:
        return f"data:{source['media_type']};base64,{source.get('data') or ''}"
    raise unsupported(f"{where}.source", "only base64 (JPEG, PNG, GIF, WebP) and URL images can be translated")


def _pdf_data(source: Any, where: str) -> str:
    if isinstance(source, Mapping) and source.get("type") == "base64" and source.get("media_type") == "application/pdf":
        return f"data:application/pdf;base64,{source.get('data') or ''}"
    raise unsupported(f"{where}.source", "only base64 PDF documents can be translated")


def _tool(tool: Mapping[str, Any], where: str) -> dict[str, Any]:
    if tool.get("type") not in (None, "custom"):
        raise unsupported(f"{where}.type", f"the server tool {tool.get('type')!r} runs on Anthropic's servers only")
    name, schema = tool.get("name"), tool.get("input_schema")
    if not isinstance(name, str) or not name or not isinstance(schema, dict):
        raise InvalidRequestError("A tool needs a name and an input_schema.", param=where, code="invalid_value")
    function: dict[str, Any] = {"name": name, "parameters": schema}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tool_choice(request: MessagesRequest, body: dict[str, Any]) -> None:
    choice = request.tool_choice
    assert choice is not None
    if choice.type == "tool":
        if not choice.name:
            raise InvalidRequestError("tool_choice of type 'tool' needs a `name`.", param="tool_choice.name")
        body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    else:
        body["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[choice.type]
    if choice.disable_parallel_tool_use:
        body["parallel_tool_calls"] = False


def reasoning_effort(request: MessagesRequest) -> str | None:
    thinking = request.thinking
    if thinking is None or thinking.type == "disabled":
        return None
    budget = thinking.budget_tokens if thinking.budget_tokens is not None else EFFORT_BUDGETS[1][0]
    return next((effort for most, effort in EFFORT_BUDGETS if budget <= most), "high")


def injected_system(native_system: Any, injected: Sequence[Mapping[str, Any]]) -> Any:
    """The client's ``system`` with what memory and RAG added as text blocks after it (its blocks, and so its
    ``cache_control`` marks, stay as they were)."""
    added = [{"type": "text", "text": message_text(message.get("content"))} for message in injected]
    if not added:
        return native_system
    if isinstance(native_system, str) and native_system:
        return [{"type": "text", "text": native_system}, *added]
    return [*(native_system if isinstance(native_system, list) else []), *added]
