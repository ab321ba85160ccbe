"""Pure construction of our errors from what an upstream said.

An upstream's own words are never the public message of a server error, a credential error or an error inside
a stream: those messages are written here, and the upstream's text goes to ``detail`` (for the log, which
redacts it). Only a client error's text (e.g. "context length exceeded", a rate limit) reaches the client, and
only after redaction and with the upstream account's organization id masked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from ailb.errors import UpstreamConnectionError, UpstreamError, UpstreamStatusError

Redact = Callable[[str], str]
_ORGANIZATION = re.compile(r"\borg-[A-Za-z0-9]+")  # the gateway's upstream account is nobody else's business


def error_message(body: bytes) -> tuple[str, str | None, str | None, str | None]:
    """``(message, type, code, param)`` from an error body in OpenAI's or Anthropic's shape, or plain text."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip()[:500], None, None, None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        return (
            str(err.get("message") or ""),
            err.get("type") if isinstance(err.get("type"), str) else None,
            str(err["code"]) if err.get("code") is not None else None,
            err.get("param") if isinstance(err.get("param"), str) else None,
        )
    if isinstance(err, str):
        return err, None, None, None
    return str(data)[:500], None, None, None


def shows_upstream_text(status: int) -> bool:
    """Whether an error status's upstream text may be public: client errors only, never credential errors."""
    return status < 500 and status not in (401, 403)


def status_message(status: int, message: str, deployment: str, redact: Redact) -> str:
    """What a client may read of an upstream error answer with ``status``."""
    if status in (401, 403):
        return f"Deployment '{deployment}' rejected the gateway's credentials (HTTP {status})."
    if status >= 500:
        return f"Deployment '{deployment}' failed with HTTP {status}."
    return public_text(message, redact) or f"HTTP {status}"


def public_text(text: str, redact: Redact) -> str:
    return _ORGANIZATION.sub("org-****", redact(text))


def status_error(
    status: int, body: bytes, deployment: str, retry_after: float | None, redact: Redact, *, code: str | None = None
) -> UpstreamError:
    """An OpenAI-shaped (or plain-text) error answer as ours; ``code`` overrides the upstream's."""
    message, err_type, upstream_code, param = error_message(body)
    shown = shows_upstream_text(status)
    return UpstreamStatusError(
        status_message(status, message, deployment, redact),
        detail=message or None,
        upstream_status=status,
        deployment=deployment,
        retry_after=retry_after,
        param=_public(param, redact) if shown else None,
        code=code or (_public(upstream_code, redact) if shown else None),
        error_type=_public(err_type, redact) if shown else None,
    )


def stream_failure(deployment: str, detail: Any, what: str = "", **kwargs: Any) -> UpstreamError:
    """An error the upstream reported inside a stream; ``what`` (a known error type) may be named."""
    said = f" ({what})" if what else ""
    text = str(detail) if detail is not None else None
    return UpstreamError(
        f"Deployment '{deployment}' failed mid-stream{said}.", deployment=deployment, detail=text, **kwargs
    )


def early_end(deployment: str) -> UpstreamError:
    return UpstreamConnectionError(
        f"Deployment '{deployment}' ended the stream before it was complete.", deployment=deployment
    )


def _public(value: str | None, redact: Redact) -> str | None:
    return public_text(value, redact) if value else value
