"""Pure translation of a canonical (OpenAI) chat request into Ollama's native ``/api/chat``.

Answers and errors are in ``response``, streamed lines in ``stream``.

Where the two APIs differ:

- sampling parameters go into ``options`` (``max_tokens`` becomes ``num_predict``); ``response_format``
  ``json_object`` becomes ``format: "json"`` and ``json_schema`` becomes ``format: <schema>``.
- images must be bytes: base64 data URLs become the message's ``images``; http(s) image URLs are rejected
  (the gateway does not fetch URLs on a client's behalf), as are audio and file parts.
- tool call arguments travel as objects (JSON strings on the OpenAI side); Ollama gives tool calls no ids,
  so answers get fresh ``call_...`` ids. ``tool`` messages carry the called tool's name as ``tool_name``.
- ``tool_choice: "none"`` sends no tools; Ollama cannot force a tool, so ``required`` is sent as plain tools
  and a named tool (or ``allowed_tools``) as only the tools it names. Legacy ``functions`` are tools too.
  Custom tools are refused; ``strict`` has no Ollama equivalent and is not sent.
- ``reasoning_effort`` becomes ``think`` (``none``/``minimal``: false, any other level: true); a ``think``
  field in the request (true/false or ``low``/``medium``/``high``, Ollama's own) is passed as it is. An
  assistant message's ``reasoning_content`` goes back as its ``thinking``.
- ``logprobs`` and ``top_logprobs`` are passed as they are; ``n > 1`` is the adapter's (one call per choice);
  ``user`` and ``logit_bias`` are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ailb.contract import message_text
from ailb.errors import InvalidRequestError
from ailb.providers import canonical, tooling
from ailb.providers.tooling import ToolRequest, tool_request

THINK_LEVELS = ("low", "medium", "high")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")

_OPTION_NAMES = (
    ("temperature", "temperature"),
    ("top_p", "top_p"),
    ("seed", "seed"),
    ("presence_penalty", "presence_penalty"),
    ("frequency_penalty", "frequency_penalty"),
)


def request_body(body: Mapping[str, Any], model: str, stream: bool) -> bytes:
    return orjson.dumps(build_request(body, model, stream))


def build_request(body: Mapping[str, Any], model: str, stream: bool) -> dict[str, Any]:
    """The ``/api/chat`` request for the OpenAI chat request ``body``."""
    canonical.reject_multiple_choices(body)
    tools = tool_request(body)
    out: dict[str, Any] = {"model": model, "messages": convert_messages(body["messages"]), "stream": stream}
    options = {ours: body[theirs] for theirs, ours in _OPTION_NAMES if body.get(theirs) is not None}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(max_tokens, int):
        options["num_predict"] = max_tokens
    stop = canonical.stop_list(body.get("stop"))
    if stop:
        options["stop"] = stop
    if options:
        out["options"] = options
    output_format = _format(body.get("response_format"))
    if output_format is not None:
        out["format"] = output_format
    if tools is not None and tools.choice != "none":
        out["tools"] = [_tool(function) for function in _offered(tools)]
    think = _think(body)
    if think is not None:
        out["think"] = think
    if body.get("logprobs") is True:
        out["logprobs"] = True
        if isinstance(body.get("top_logprobs"), int) and body["top_logprobs"] > 0:
            out["top_logprobs"] = body["top_logprobs"]
    return out


def _offered(tools: ToolRequest) -> tuple[Mapping[str, Any], ...]:
    if tools.choice == "function":
        return tuple(function for function in tools.functions if function.get("name") == tools.name)
    return tools.functions


def _think(body: Mapping[str, Any]) -> bool | str | None:
    """Ollama's ``think``: the request's own when it gives one, else from ``reasoning_effort``."""
    own = body.get("think")
    if isinstance(own, bool) or own in THINK_LEVELS:
        return own
    if own is not None:
        raise InvalidRequestError("think must be true, false, low, medium or high.", param="think")
    effort = body.get("reasoning_effort")
    if effort is None:
        return None
    if effort not in REASONING_EFFORTS:
        raise InvalidRequestError(
            f"reasoning_effort must be one of {', '.join(REASONING_EFFORTS)}.", param="reasoning_effort"
        )
    return effort not in ("none", "minimal")


def convert_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tool_names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            out.append({"role": "system", "content": message_text(message.get("content"))})
        elif role == "user":
            out.append(_user_message(message.get("content")))
        elif role == "assistant":
            out.append(_assistant_message(message, tool_names))
        elif role == "tool":
            result = {"role": "tool", "content": message_text(message.get("content"))}
            name = tool_names.get(str(message.get("tool_call_id")))
            if name:
                result["tool_name"] = name
            out.append(result)
        elif role == "function":
            out.append({"role": "tool", "content": message_text(message.get("content")), "tool_name": message["name"]})
        else:
            raise InvalidRequestError(f"Messages with role '{role}' are not supported.", param="messages")
    return out


def _user_message(content: Any) -> dict[str, Any]:
    texts: list[str] = []
    images: list[str] = []
    for part in canonical.content_parts(content):
        kind = part.get("type")
        if kind == "text":
            texts.append(str(part.get("text") or ""))
        elif kind == "image_url":
            images.append(_image(part.get("image_url") or {}))
        else:
            raise InvalidRequestError(
                f"Content of type '{kind}' is not supported by this deployment.", param="messages"
            )
    message: dict[str, Any] = {"role": "user", "content": "\n".join(t for t in texts if t)}
    if images:
        message["images"] = images
    return message


def _image(image_url: Mapping[str, Any]) -> str:
    parsed = canonical.parse_data_url(str(image_url.get("url") or ""))
    if parsed is None:
        raise InvalidRequestError(
            "This deployment (Ollama) needs images inline: send them as base64 data URLs, not links.",
            param="messages",
        )
    return parsed[1]


def _assistant_message(message: Mapping[str, Any], tool_names: dict[str, str]) -> dict[str, Any]:
    tooling.reject_custom_tool_calls(message)
    texts = [part.get("text") or part.get("refusal") or "" for part in canonical.content_parts(message.get("content"))]
    out: dict[str, Any] = {"role": "assistant", "content": "".join(texts)}
    if isinstance(message.get("reasoning_content"), str) and message["reasoning_content"]:
        out["thinking"] = message["reasoning_content"]
    calls = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        name = str(function.get("name") or "")
        if call.get("id"):
            tool_names[str(call["id"])] = name
        calls.append({"function": {"name": name, "arguments": canonical.arguments_object(function.get("arguments"))}})
    legacy = message.get("function_call")
    if isinstance(legacy, Mapping):
        arguments = canonical.arguments_object(legacy.get("arguments"))
        calls.append({"function": {"name": str(legacy.get("name") or ""), "arguments": arguments}})
    if calls:
        out["tool_calls"] = calls
    return out


def _tool(function: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": function.get("name", "")}
    if function.get("description"):
        spec["description"] = function["description"]
    spec["parameters"] = function.get("parameters") or {"type": "object", "properties": {}}
    return {"type": "function", "function": spec}


def _format(response_format: Any) -> str | dict[str, Any] | None:
    if not isinstance(response_format, Mapping):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        return schema if isinstance(schema, dict) and schema else "json"
    return None


def embed_request(texts: Sequence[str], model: str, dimensions: int | None = None) -> bytes:
    body: dict[str, Any] = {"model": model, "input": list(texts)}
    if dimensions is not None:
        body["dimensions"] = dimensions
    return orjson.dumps(body)
