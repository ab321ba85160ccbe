"""Errors in the Anthropic shape: ``{"type": "error", "error": {"type", "message"}}`` with the same status.

The error type follows the status as Anthropic's API uses it: 400 ``invalid_request_error``, 401
``authentication_error``, 403 ``permission_error``, 404 ``not_found_error``, 413 ``request_too_large``, 429
``rate_limit_error``, 504 ``timeout_error``, 503 and 529 ``overloaded_error``, any other server error
``api_error``. The message passes the gateway's redactor, like every error text.
"""

from __future__ import annotations

import orjson

from ailb.errors import AILBError
from ailb.redaction import Redactor

TYPES_BY_STATUS = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(exc: AILBError) -> str:
    if exc.status in TYPES_BY_STATUS:
        return TYPES_BY_STATUS[exc.status]
    return "api_error" if exc.status >= 500 else "invalid_request_error"


def error_body(exc: AILBError, redactor: Redactor) -> bytes:
    message = redactor(exc.public_message or exc.message)
    return orjson.dumps({"type": "error", "error": {"type": error_type(exc), "message": message}})
