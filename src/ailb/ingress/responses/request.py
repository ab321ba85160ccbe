"""A Responses API request as the canonical chat call every provider answers (pure).

- ``instructions`` becomes the first (system) message; ``input`` as a string is one user message; input items
  become chat messages: ``message`` items keep their role, ``function_call`` items become the assistant's
  ``tool_calls`` (consecutive calls share one assistant turn), ``function_call_output`` items ``tool``
  messages. A ``reasoning`` item carries Claude's signed thinking back (in ``encrypted_content``, as AILB wrote
  it) to the assistant turn after it; its text is not sent again.
- ``tools`` (function tools), ``tool_choice``, ``parallel_tool_calls``, ``temperature``, ``top_p`` map one to
  one; ``max_output_tokens`` becomes ``max_completion_tokens``, ``text.format`` ``response_format``,
  ``reasoning.effort`` ``reasoning_effort``, ``user`` (else ``safety_identifier``) ``user``;
  ``prompt_cache_key`` and ``service_tier`` are passed to OpenAI-compatible upstreams.
- ``metadata`` is echoed in the answer, never sent upstream; ``store`` is accepted, but nothing is stored (the
  answer says ``store: false``).
- Refused with a 400 naming the field: built-in tools (web search, file search, computer use, MCP ...) and
  custom tools, ``previous_response_id``, ``conversation``, ``background``, ``prompt`` templates,
  ``top_logprobs``, ``include`` other than ``reasoning.encrypted_content``, ``truncation: auto``,
  ``text.verbosity``, file ids, and any field the API does not have.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from ailb.contract import ChatCall
from ailb.errors import InvalidRequestError
from ailb.ingress.chat.schema import ThinkingBlock
from ailb.ingress.responses.schema import (
    RESPONSES_FIELDS,
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionTool,
    InputContent,
    InputFile,
    InputImage,
    InputText,
    MessageItem,
    NamedToolChoice,
    OutputText,
    ReasoningItem,
    ResponsesRequest,
    TextOptions,
)
from ailb.ingress.validation import ailb_options, convert, refuse_unknown, unsupported

ENCRYPTED_PREFIX = "ailb.thinking.v1:"  # reasoning items AILB wrote: Claude's signed thinking blocks, base64
INCLUDABLE = frozenset({"reasoning.encrypted_content"})
_THINKING_BLOCKS = msgspec.json.Decoder(list[ThinkingBlock])


@dataclass(frozen=True, slots=True)
class ResponseSpec:
    """What the answer echoes of the request (``tools`` and ``tool_choice`` as the client wrote them)."""

    model: str
    instructions: str | None
    max_output_tokens: int | None
    metadata: dict[str, str]
    parallel_tool_calls: bool
    reasoning: dict[str, Any] | None
    temperature: float | None
    top_p: float | None
    text: dict[str, Any]
    tool_choice: Any
    tools: list[dict[str, Any]]
    user: str | None

    @property
    def summarize(self) -> bool:
        """Whether reasoning is also given as a summary (the client asked for one)."""
        return bool(self.reasoning and (self.reasoning.get("summary") or self.reasoning.get("generate_summary")))


def to_chat_call(data: dict[str, Any], tenant: str, headers: Mapping[str, str]) -> tuple[ChatCall, ResponseSpec]:
    refuse_unknown(data, RESPONSES_FIELDS, "Responses API")
    request = convert(data, ResponsesRequest)
    _refuse_unsupported(request)
    tools = [_function_tool(tool, i) for i, tool in enumerate(request.tools or ())]
    body: dict[str, Any] = {"model": request.model, "messages": _messages(request)}
    if tools:
        body["tools"] = [_chat_tool(tool) for tool in tools]
    if request.tool_choice is not None:
        body["tool_choice"] = _tool_choice(request.tool_choice)
    _copy_options(request, body)
    options = ailb_options(request, headers)
    call = options.call(body, request.model, bool(request.stream), tenant)
    return call, _spec(request, tools)


def _refuse_unsupported(request: ResponsesRequest) -> None:
    if request.previous_response_id is not None:
        raise unsupported(
            "previous_response_id",
            "AILB does not store responses. Send the whole conversation in `input`, or let AILB remember it: "
            "pass a `session_id` (body field or X-Session-ID header)",
        )
    for name, value in (("conversation", request.conversation), ("prompt", request.prompt)):
        if value is not None:
            raise unsupported(name, "AILB does not store conversations or prompt templates")
    if request.background:
        raise unsupported("background", "AILB answers while the request is open; it runs nothing in the background")
    if request.top_logprobs:
        raise unsupported("top_logprobs", "log probabilities are not translated to the Responses API")
    for value in request.include or ():
        if value not in INCLUDABLE:
            raise unsupported("include", f"{value!r} cannot be included (only reasoning.encrypted_content)")
    if request.truncation == "auto":
        raise unsupported("truncation", "AILB never truncates a conversation; use 'disabled'")
    if request.text is not None and request.text.verbosity is not None:
        raise unsupported("text.verbosity", "not every provider can honour it")


def _messages(request: ResponsesRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
    if isinstance(request.input, str):
        messages.append({"role": "user", "content": request.input})
        return messages
    thinking: list[dict[str, Any]] = []  # signed thinking waiting for the assistant turn it belongs to
    for index, item in enumerate(request.input):
        kind = item.get("type", "message")
        at = f"input[{index}]"
        if kind == "message":
            message = _message(convert(item, MessageItem, at), at)
            if message["role"] == "assistant" and thinking:
                message["thinking_blocks"], thinking = thinking, []
            messages.append(message)
        elif kind == "function_call":
            call = convert(item, FunctionCallItem, at)
            _assistant_turn(messages, thinking).setdefault("tool_calls", []).append(
                {"id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            )
            thinking = []
        elif kind == "function_call_output":
            output = convert(item, FunctionCallOutputItem, at)
            messages.append({"role": "tool", "tool_call_id": output.call_id, "content": _text_of(output.output, at)})
        elif kind == "reasoning":
            thinking.extend(_thinking_blocks(convert(item, ReasoningItem, at), at))
        else:
            raise InvalidRequestError(
                f"Input items of type {kind!r} are not supported by AILB's Responses API (it serves messages, "
                "function calls, their outputs and reasoning).",
                param=f"{at}.type",
                code="unsupported_parameter",
            )
    return messages


def _assistant_turn(messages: list[dict[str, Any]], thinking: list[dict[str, Any]]) -> dict[str, Any]:
    """The assistant message a function call belongs to: the last one, unless something came after it."""
    if messages and messages[-1]["role"] == "assistant":
        return messages[-1]
    turn: dict[str, Any] = {"role": "assistant", "content": None}
    if thinking:
        turn["thinking_blocks"] = list(thinking)
    messages.append(turn)
    return turn


def _message(item: MessageItem, at: str) -> dict[str, Any]:
    if item.role == "assistant":
        return {"role": "assistant", "content": _text_of(item.content, at)}
    if isinstance(item.content, str) or item.role in ("system", "developer"):
        return {"role": item.role, "content": _text_of(item.content, at)}
    return {"role": item.role, "content": [_part(part, f"{at}.content[{i}]") for i, part in enumerate(item.content)]}


def _part(part: InputContent, at: str) -> dict[str, Any]:
    if isinstance(part, InputText | OutputText):
        return {"type": "text", "text": part.text}
    if isinstance(part, InputImage):
        if not part.image_url:
            raise unsupported(f"{at}.file_id", "AILB has no file store; send the image as `image_url`")
        url: dict[str, Any] = {"url": part.image_url}
        if part.detail in ("auto", "low", "high"):
            url["detail"] = part.detail
        return {"type": "image_url", "image_url": url}
    if isinstance(part, InputFile):
        if not part.file_data:
            raise unsupported(f"{at}.file_id", "AILB has no file store; send the file as base64 `file_data`")
        file = {"file_data": part.file_data, **({"filename": part.filename} if part.filename else {})}
        return {"type": "file", "file": file}
    raise unsupported(f"{at}.type", "a refusal is not input a model can take")


def _text_of(content: Any, at: str) -> str:
    """Text-only content (system, developer, assistant turns and tool output) as one string."""
    if isinstance(content, str):
        return content
    texts = []
    for i, part in enumerate(content):
        text = getattr(part, "text", None)
        if text is None:
            text = getattr(part, "refusal", None)
        if text is None:
            raise unsupported(f"{at}.content[{i}]", "only text is supported here")
        texts.append(text)
    return "".join(texts)


def _thinking_blocks(item: ReasoningItem, at: str) -> list[dict[str, Any]]:
    """Claude's signed thinking from a reasoning item AILB wrote; other reasoning is not sent back upstream."""
    encrypted = item.encrypted_content
    if not encrypted or not encrypted.startswith(ENCRYPTED_PREFIX):
        return []
    try:
        blocks = _THINKING_BLOCKS.decode(base64.b64decode(encrypted[len(ENCRYPTED_PREFIX) :], validate=True))
    except (binascii.Error, msgspec.DecodeError):
        raise InvalidRequestError(
            "This reasoning item's encrypted_content was not written by AILB.",
            param=f"{at}.encrypted_content",
            code="invalid_value",
        ) from None
    return [msgspec.to_builtins(block) for block in blocks]


def encrypt_thinking(blocks: list[dict[str, Any]]) -> str:
    """Claude's signed thinking blocks as a reasoning item's ``encrypted_content`` (opaque to clients)."""
    return ENCRYPTED_PREFIX + base64.b64encode(orjson.dumps(blocks)).decode()


def _function_tool(tool: dict[str, Any], index: int) -> FunctionTool:
    kind = tool.get("type")
    if kind != "function":
        raise InvalidRequestError(
            f"Tools of type {kind!r} are not supported by AILB's Responses API: only function tools (built-in "
            "tools run on OpenAI's own servers).",
            param=f"tools[{index}].type",
            code="unsupported_parameter",
        )
    return convert(tool, FunctionTool, f"tools[{index}]")


def _chat_tool(tool: FunctionTool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.parameters is not None:
        function["parameters"] = tool.parameters
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _tool_choice(choice: str | NamedToolChoice) -> Any:
    if isinstance(choice, str):
        return choice
    if choice.type == "function":
        if not isinstance(choice.name, str):
            raise InvalidRequestError("tool_choice of type 'function' needs a `name`.", param="tool_choice.name")
        return {"type": "function", "function": {"name": choice.name}}
    if not isinstance(choice.mode, str) or not isinstance(choice.tools, list) or not choice.tools:
        raise InvalidRequestError("tool_choice 'allowed_tools' needs `mode` and `tools`.", param="tool_choice")
    return {"type": "allowed_tools", "allowed_tools": {"mode": choice.mode, "tools": choice.tools}}


def _copy_options(request: ResponsesRequest, body: dict[str, Any]) -> None:
    for name in ("temperature", "top_p", "parallel_tool_calls", "prompt_cache_key", "service_tier"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.max_output_tokens is not None:
        body["max_completion_tokens"] = request.max_output_tokens
    user = request.user or request.safety_identifier
    if user:
        body["user"] = user
    if request.reasoning is not None and request.reasoning.effort is not None:
        body["reasoning_effort"] = request.reasoning.effort
    response_format = _response_format(request.text)
    if response_format is not None:
        body["response_format"] = response_format


def _response_format(text: TextOptions | None) -> dict[str, Any] | None:
    spec = text.format if text is not None else None
    if spec is None or spec.type == "text":
        return None
    if spec.type == "json_object":
        return {"type": "json_object"}
    if not isinstance(spec.name, str) or not isinstance(spec.schema, dict):
        raise InvalidRequestError("text.format 'json_schema' needs `name` and `schema`.", param="text.format")
    schema: dict[str, Any] = {"name": spec.name, "schema": spec.schema}
    if isinstance(spec.description, str):
        schema["description"] = spec.description
    if spec.strict is not None:
        schema["strict"] = spec.strict
    return {"type": "json_schema", "json_schema": schema}


def _spec(request: ResponsesRequest, tools: list[FunctionTool]) -> ResponseSpec:
    text = msgspec.to_builtins(request.text) if request.text is not None and request.text.format else None
    return ResponseSpec(
        model=request.model,
        instructions=request.instructions,
        max_output_tokens=request.max_output_tokens,
        metadata=dict(request.metadata or {}),
        parallel_tool_calls=request.parallel_tool_calls is not False,
        reasoning=msgspec.to_builtins(request.reasoning) if request.reasoning is not None else None,
        temperature=request.temperature,
        top_p=request.top_p,
        text=text or {"format": {"type": "text"}},
        tool_choice=msgspec.to_builtins(request.tool_choice) if request.tool_choice is not None else "auto",
        tools=[_echo_tool(tool) for tool in tools],
        user=request.user,
    )


def _echo_tool(tool: FunctionTool) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
        "strict": tool.strict,
    }
