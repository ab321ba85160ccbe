"""Pure translation between the canonical (OpenAI) chat form and Ollama's native ``/api/chat``.

Where the two APIs differ:

- sampling parameters go into ``options`` (``max_tokens`` becomes ``num_predict``); ``response_format``
  ``json_object`` becomes ``format: "json"`` and ``json_schema`` becomes ``format: <schema>``.
- images must be bytes: base64 data URLs become the message's ``images``; http(s) image URLs are rejected
  (the gateway does not fetch URLs on a client's behalf), as are audio and file parts.
- tool call arguments travel as objects (JSON strings on the OpenAI side); Ollama gives tool calls no ids,
  so answers get fresh ``call_...`` ids. ``tool`` messages carry the called tool's name as ``tool_name``.
- ``tool_choice: "none"`` sends no tools; Ollama cannot force a tool, so ``required`` or a named tool is
  sent as plain tools. ``n > 1`` is rejected; ``user`` and ``logit_bias`` are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ailb.errors import InvalidRequestError, UpstreamError, UpstreamProtocolError
from ailb.providers import canonical
from ailb.providers.transport import status_error as generic_status_error
from ailb.types import Completion, Usage, message_text

FINISH_REASONS = {"stop": "stop", "length": "length"}
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
    if body.get("tools") and body.get("tool_choice") != "none":
        out["tools"] = [_tool(t) for t in body["tools"]]
    return out


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
    texts = [part.get("text") or part.get("refusal") or "" for part in canonical.content_parts(message.get("content"))]
    out: dict[str, Any] = {"role": "assistant", "content": "".join(texts)}
    calls = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        name = str(function.get("name") or "")
        if call.get("id"):
            tool_names[str(call["id"])] = name
        calls.append({"function": {"name": name, "arguments": canonical.arguments_object(function.get("arguments"))}})
    if calls:
        out["tool_calls"] = calls
    return out


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
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


# --- answers ---------------------------------------------------------------------------------------------
def usage_from(data: Mapping[str, Any]) -> Usage:
    return Usage(int(data.get("prompt_eval_count") or 0), int(data.get("eval_count") or 0))


def finish_reason(done_reason: Any, has_tool_calls: bool) -> str:
    if has_tool_calls:
        return "tool_calls"
    return FINISH_REASONS.get(done_reason, "stop") if isinstance(done_reason, str) else "stop"


def tool_calls_from(message: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(name, arguments JSON string)`` of each tool call in an Ollama message."""
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return []
    out = []
    for call in calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            continue
        arguments = function.get("arguments")
        text = arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode()
        out.append((str(function.get("name") or ""), text))
    return out


def completion_from_response(data: Any, model: str, deployment: str) -> Completion:
    if not isinstance(data, Mapping) or not isinstance(data.get("message"), Mapping):
        raise UpstreamProtocolError(
            f"Deployment '{deployment}' returned an answer without a message.", deployment=deployment
        )
    message = data["message"]
    text = message.get("content") if isinstance(message.get("content"), str) else ""
    calls = [canonical.tool_call(canonical.call_id(), name, args) for name, args in tool_calls_from(message)]
    usage = usage_from(data)
    body = canonical.completion_body(
        model=str(data.get("model") or model),
        content=text,
        tool_calls=calls,
        finish_reason=finish_reason(data.get("done_reason"), bool(calls)),
        usage=usage,
    )
    return Completion(body=body, usage=usage, text=text)


def model_ids(data: Any) -> list[str]:
    """Model names from ``/api/tags`` (``models[].name``, or ``model`` in newer answers)."""
    items = data.get("models") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        return []
    names = (m.get("name") or m.get("model") for m in items if isinstance(m, Mapping))
    return [str(name) for name in names if name]


def embed_request(texts: Sequence[str], model: str) -> bytes:
    return orjson.dumps({"model": model, "input": list(texts)})


def embeddings_from_response(data: Any, count: int, deployment: str) -> list[list[float]]:
    vectors = data.get("embeddings") if isinstance(data, Mapping) else None
    return canonical.embedding_vectors(vectors, count, deployment)


# --- errors ----------------------------------------------------------------------------------------------
def status_error(status: int, body: bytes, deployment: str, retry_after: float | None) -> UpstreamError:
    """Ollama's error answers are ``{"error": "message"}``; a 404 means the model is not pulled there."""
    error = generic_status_error(status, body, deployment, retry_after)
    if status == 404:
        error.code = "model_not_found"
    return error


def stream_error(message: Any, deployment: str) -> UpstreamError:
    """An ``{"error": ...}`` line in the middle of a stream (e.g. the model runner died)."""
    return UpstreamError(f"Deployment '{deployment}' failed mid-stream: {message}", deployment=deployment)
