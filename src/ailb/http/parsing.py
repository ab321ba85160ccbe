"""Reading and validating a request body: once, with the size limit enforced while reading."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import orjson
from starlette.requests import ClientDisconnect, Request

from ailb.errors import InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError
from ailb.types import (
    AILB_BODY_FIELDS,
    CLIENT_CONFIG_FIELDS,
    REQUEST_FIELDS,
    SESSION_ID_PATTERN,
    ChatCall,
    ChatCompletionRequest,
)

_SESSION_ID = re.compile(SESSION_ID_PATTERN)
_PATH = re.compile(r"at `\$(.*)`$")
_SESSION_RULE = "session_id must be 1-128 characters of letters, digits, '.', '_', ':' or '-'."


class ClientDisconnected(Exception):
    """The client went away before its answer was ready (counted as 499). ``args[0]``, when given, says when."""


async def read_body(request: Request, limit: int) -> bytes:
    content_type = request.headers.get("content-type", "application/json").split(";", 1)[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaTypeError(f"Content-Type must be application/json, got {content_type!r}.", param=None)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"Request body exceeds the limit of {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(f"Request body exceeds the limit of {limit} bytes.")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientDisconnected(f"after {size} of {declared or 'unknown'} body bytes") from None
    return b"".join(chunks)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise InvalidRequestError("The request body is empty; expected a JSON object.", code="invalid_json")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = "nested too deeply" if "recursion" in str(exc).lower() else str(exc)
        raise InvalidRequestError(f"The request body is not valid JSON: {reason}", code="invalid_json") from None
    except RecursionError:
        raise InvalidRequestError("The request body is nested too deeply.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("The request body must be a JSON object.", code="invalid_json")
    return data


def validate_chat(
    data: dict[str, Any], tenant: str, header_session: str | None, header_strategy: str | None
) -> ChatCall:
    """Check ``data`` against the OpenAI chat schema and split off AILB's own fields."""
    if not data.keys() <= REQUEST_FIELDS:
        refuse_client_config(data)
    try:
        request = msgspec.convert(data, ChatCompletionRequest)
    except msgspec.ValidationError as exc:
        raise InvalidRequestError(_describe(str(exc)), param=_param_of(str(exc)), code="invalid_value") from None
    except RecursionError:
        raise InvalidRequestError("The request body is nested too deeply.", code="invalid_json") from None
    session_id = request.session_id
    # The schema's "$" also accepts a trailing newline; the whole id must match.
    if session_id is not None and not _SESSION_ID.fullmatch(session_id):
        raise InvalidRequestError(_SESSION_RULE, param="session_id", code="invalid_value")
    if session_id is None and header_session is not None:
        if not _SESSION_ID.fullmatch(header_session):
            raise InvalidRequestError("X-Session-ID: " + _SESSION_RULE, param="session_id", code="invalid_value")
        session_id = header_session
    for key in AILB_BODY_FIELDS:
        data.pop(key, None)
    collections = request.rag_collection
    names = (collections,) if isinstance(collections, str) else tuple(collections or ())
    options = request.stream_options
    return ChatCall(
        body=data,
        model=request.model,
        stream=bool(request.stream),
        include_usage=bool(options and options.include_usage),
        tenant=tenant,
        session_id=session_id,
        rag_collections=names,
        rag_top_k=request.rag_top_k or 3,
        strategy=header_strategy or request.routing_strategy,
    )


def refuse_client_config(data: dict[str, Any]) -> None:
    """400 for a credential, endpoint or client-library setting in the body; other unknown fields pass through."""
    for key in sorted(data.keys() - REQUEST_FIELDS):
        if key.strip().lower().replace("-", "_") in CLIENT_CONFIG_FIELDS:
            raise InvalidRequestError(
                f"Unsupported parameter `{key}`: AILB never forwards credentials, endpoints or client settings "
                "from a request. Authenticate to AILB with 'Authorization: Bearer <key>'; upstream credentials "
                "and addresses are configured on the gateway.",
                param=key,
                code="unsupported_parameter",
            )


def _param_of(message: str) -> str | None:
    match = _PATH.search(message)
    if not match:
        return None
    path = match.group(1)
    return path[1:] if path.startswith(".") else path or None


def _describe(message: str) -> str:
    text = message.replace("`$.", "`").replace("`$`", "the body")
    if "should match pattern" in text and "session_id" in text:
        return _SESSION_RULE
    return f"Invalid request: {text}"
