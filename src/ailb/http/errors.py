"""Rendering every failure as an OpenAI-shaped error; internals go to the log only.

Every error text leaves through ``error_body``, which passes each field through the gateway's ``Redactor``:
messages are AILB's own by construction (see ``ailb.errors``), and this is the last line of defence.
"""

from __future__ import annotations

import logging
from functools import partial

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ailb.errors import AILBError, InvalidRequestError
from ailb.http.parsing import ClientDisconnected
from ailb.redaction import Redactor

CLIENT_CLOSED_REQUEST = 499  # the status proxies log for a client that left before its answer

log = logging.getLogger("ailb.http")


def error_body(exc: AILBError, redactor: Redactor) -> bytes:
    """``exc`` as OpenAI's error JSON, every text field redacted."""
    fields = exc.to_body()["error"]
    return orjson.dumps({"error": {k: redactor(v) if isinstance(v, str) else v for k, v in fields.items()}})


def error_response(exc: AILBError, redactor: Redactor) -> Response:
    return Response(
        error_body(exc, redactor), status_code=exc.status, media_type="application/json", headers=exc.headers or None
    )


def _body(status: int, message: str, type_: str, code: str | None, param: str | None = None) -> Response:
    payload = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


async def _ailb_error(request: Request, exc: Exception, redactor: Redactor) -> Response:
    assert isinstance(exc, AILBError)
    if exc.status >= 500:
        log.warning("%s %s answered %d: %s", request.method, request.url.path, exc.status, exc.log_message)
    return error_response(exc, redactor)


async def _validation_error(_request: Request, exc: Exception, redactor: Redactor) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    param = ".".join(loc) or None
    message = f"Invalid request: {first.get('msg', 'invalid value')}" + (f" at `{param}`" if param else "")
    return error_response(InvalidRequestError(message, param=param, code="invalid_value"), redactor)


async def _http_error(_request: Request, exc: Exception, redactor: Redactor) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return _body(
            404, "Unknown request URL. Please check the URL and method.", "invalid_request_error", "unknown_url"
        )
    if exc.status_code == 405:
        return _body(405, "Method not allowed for this URL.", "invalid_request_error", "method_not_allowed")
    return _body(exc.status_code, redactor(str(exc.detail)), "invalid_request_error", None)


async def _disconnected(request: Request, exc: Exception) -> Response:
    """The client left (e.g. mid-upload): one log line, no traceback; nobody is left to read the answer."""
    when = f" ({exc.args[0]})" if isinstance(exc, ClientDisconnected) and exc.args else ""
    log.info("client connection closed during %s %s%s", request.method, request.url.path, when)
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def _unexpected(request: Request, exc: Exception) -> Response:
    return internal_error(request, exc)


def internal_error(request: Request, exc: Exception) -> Response:
    """A bug: the detail goes to the log, the client gets a 500 in OpenAI's shape and no stack trace."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _body(500, "The gateway hit an internal error. It has been logged.", "server_error", "internal_error")


def install_error_handlers(app: FastAPI, redactor: Redactor) -> None:
    app.add_exception_handler(AILBError, partial(_ailb_error, redactor=redactor))
    app.add_exception_handler(RequestValidationError, partial(_validation_error, redactor=redactor))
    app.add_exception_handler(HTTPException, partial(_http_error, redactor=redactor))
    app.add_exception_handler(ClientDisconnected, _disconnected)
    app.add_exception_handler(ClientDisconnect, _disconnected)
    app.add_exception_handler(Exception, _unexpected)
