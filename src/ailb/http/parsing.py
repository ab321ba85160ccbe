"""Reading and validating a request body: once, with the size limit enforced while reading."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from ailb.errors import InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError


class ClientDisconnected(Exception):
    """The client went away before its answer was ready (counted as 499). ``args[0]``, when given, says when."""


def header(request: Request, name: bytes) -> str | None:
    """The first value of the header ``name`` (lower case), as ``request.headers.get`` gives it, read straight
    from the ASGI scope (no ``Headers`` object, no ``KeyError`` raised and caught for an absent header)."""
    raw: list[tuple[bytes, bytes]] = request.scope["headers"]
    for key, value in raw:
        if key == name:
            return value.decode("latin-1")
    return None


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, read from the ASGI ``receive`` (once: the request's stream is not read again)."""
    content_type = (header(request, b"content-type") or "application/json").split(";", 1)[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaTypeError(f"Content-Type must be application/json, got {content_type!r}.", param=None)
    declared = header(request, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"Request body exceeds the limit of {limit} bytes.")
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(f"Request body exceeds the limit of {limit} bytes.")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif kind == "http.disconnect":
            raise ClientDisconnected(f"after {size} of {declared or 'unknown'} body bytes")


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
