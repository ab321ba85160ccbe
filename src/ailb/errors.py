"""The AILB error tree.

Every error a client can see is an ``AILBError``: it knows its HTTP status, the OpenAI error ``type`` and
``code``, the offending ``param`` (if any) and whether another attempt elsewhere could succeed.

    AILBError
    ├── InvalidRequestError          400 invalid_request_error
    │   ├── PayloadTooLargeError     413
    │   └── UnsupportedMediaTypeError 415
    ├── AuthenticationError          401 authentication_error
    ├── PermissionDeniedError        403 permission_error
    ├── NotFoundError                404 not_found_error
    │   └── ModelNotFoundError       404 model_not_found
    ├── RateLimitedError             429 rate_limit_exceeded (gateway's own limit, a key's rpm/tpm)
    ├── QuotaExceededError           429 insufficient_quota (a key's budget for the period is spent)
    ├── NoDeploymentAvailableError   503 (every candidate's circuit is open)
    └── UpstreamError                an attempt at one deployment failed
        ├── UpstreamStatusError      the provider answered with an error status
        ├── UpstreamTimeoutError     504
        ├── UpstreamConnectionError  503 (refused / dropped)
        └── UpstreamProtocolError    502 (unparseable reply)

Foreign exceptions (sockets and HTTP, chromadb, grpc) are translated into these at their seam.

An error is a value: it is never changed after it is made. Its ``message`` is public and AILB writes it; what
someone else said (an upstream's error text, a store's exception) goes to ``detail``, which only the log sees
(``log_message``), and the log redacts it. The one exception is an upstream's *client* error (e.g. "context
length exceeded"): its text is the message, after redaction (see ``providers/errors.py``).
"""

from __future__ import annotations

import math
from typing import Any


class AILBError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = None
    retryable: bool = False
    # A class whose ``message`` holds internals (paths, store errors) names its public text here instead; new
    # errors keep ``message`` public and pass internals as ``detail``.
    public_message: str | None = None

    def __init__(
        self,
        message: str,
        *,
        detail: str | None = None,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = _bounded(detail)
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers: dict[str, str] = headers or {}

    def to_body(self) -> dict[str, Any]:
        message = self.public_message or self.message
        return {"error": {"message": message, "type": self.type, "param": self.param, "code": self.code}}

    @property
    def log_message(self) -> str:
        """The message with its detail, for the log only."""
        return f"{self.message} [{self.detail}]" if self.detail else self.message


MAX_DETAIL = 1000  # an upstream may answer megabytes of error text; a log line keeps its beginning


def _bounded(detail: str | None) -> str | None:
    if detail is None or len(detail) <= MAX_DETAIL:
        return detail
    return detail[:MAX_DETAIL] + f"… ({len(detail) - MAX_DETAIL} more characters)"


class InvalidRequestError(AILBError):
    status = 400
    type = "invalid_request_error"


class PayloadTooLargeError(InvalidRequestError):
    status = 413
    code = "request_too_large"


class UnsupportedMediaTypeError(InvalidRequestError):
    status = 415
    code = "unsupported_media_type"


class AuthenticationError(AILBError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDeniedError(AILBError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFoundError(AILBError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(f"The model `{model}` does not exist or is not served by this gateway.", param="model")


class RateLimitedError(AILBError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float, should_retry: bool = True) -> None:
        headers = {"Retry-After": retry_after_header(retry_after)}
        if not should_retry:
            headers[SHOULD_RETRY] = "false"
        super().__init__(message, headers=headers)
        self.retry_after = retry_after


class QuotaExceededError(AILBError):
    """A client key's budget is spent until its period resets (``retry_after`` seconds from now). Retrying
    sooner cannot succeed, so the answer also tells the OpenAI SDKs not to retry."""

    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, headers={"Retry-After": retry_after_header(retry_after), SHOULD_RETRY: "false"})
        self.retry_after = retry_after


SHOULD_RETRY = "x-should-retry"  # honoured by the official OpenAI and Anthropic SDKs


def retry_after_header(seconds: float) -> str:
    """Whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds - 1e-9)))


class NoDeploymentAvailableError(AILBError):
    status = 503
    type = "server_error"
    code = "no_deployment_available"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        headers = {"Retry-After": str(max(1, round(retry_after + 0.499)))} if retry_after is not None else None
        super().__init__(message, headers=headers)
        self.retry_after = retry_after


class UpstreamError(AILBError):
    """One attempt at one deployment failed. ``retryable`` says whether another attempt may succeed."""

    status = 502
    type = "upstream_error"
    code = "upstream_error"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        deployment: str = "",
        detail: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        param: str | None = None,
        code: str | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message, detail=detail, status=status, param=param, code=code)
        self.deployment = deployment
        if retryable is not None:
            self.retryable = retryable
        if error_type is not None:
            self.type = error_type
        self.retry_after = retry_after
        if retry_after is not None:
            self.headers["Retry-After"] = str(max(1, round(retry_after + 0.499)))


class UpstreamStatusError(UpstreamError):
    """The provider answered with an HTTP error status (``upstream_status``)."""

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int,
        deployment: str = "",
        detail: str | None = None,
        retry_after: float | None = None,
        param: str | None = None,
        code: str | None = None,
        error_type: str | None = None,
    ) -> None:
        self.upstream_status = upstream_status
        self.misconfigured = upstream_status in (401, 403)
        retryable = is_retryable_status(upstream_status)
        if upstream_status >= 500 or self.misconfigured:
            status, error_type = (502, "upstream_error")
        else:
            status = upstream_status
            error_type = error_type or _type_for_status(upstream_status)
        super().__init__(
            message,
            deployment=deployment,
            detail=detail,
            status=status,
            retryable=retryable or self.misconfigured,
            retry_after=retry_after,
            param=param,
            code=code,
            error_type=error_type,
        )


class UpstreamTimeoutError(UpstreamError):
    status = 504
    code = "upstream_timeout"


class UpstreamConnectionError(UpstreamError):
    status = 503
    code = "upstream_unavailable"


class UpstreamProtocolError(UpstreamError):
    status = 502
    code = "upstream_bad_response"


RETRYABLE_STATUSES = frozenset({408, 409, 429, 529})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


def _type_for_status(status: int) -> str:
    return {
        400: "invalid_request_error",
        404: "invalid_request_error",
        409: "invalid_request_error",
        413: "invalid_request_error",
        422: "invalid_request_error",
        429: "rate_limit_error",
    }.get(status, "invalid_request_error")
