"""Logging set-up: plain or JSON lines, with every secret redacted from every record.

A plain line is redacted whole once formatted (message, arguments, traceback and extra fields alike), so a key
can't slip through a ``%r`` or an exception's text. A JSON line (``LOG_FORMAT=json``) is one object per line —
``timestamp``, ``level``, ``logger``, ``message``, ``request_id`` and, with tracing on, ``trace_id`` and
``span_id`` of the request being served, ``exception`` and any ``extra`` fields — and each of its string values
is redacted before it is serialised, so the line stays valid JSON whatever the redactor replaces. The
``Redactor`` (``ailb.redaction``) removes Bearer tokens, ``sk-...`` style keys, ``x-api-key``/``api_key``
values and every configured secret (provider keys, client keys, admin token) in any casing.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from ailb.observability.context import current_request
from ailb.redaction import Redactor

_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_HANDLER_NAME = "ailb"
__all__ = ["JsonFormatter", "RedactingFilter", "RedactingFormatter", "Redactor", "configure_logging"]


class RedactingFormatter(logging.Formatter):
    """A ``logging.Formatter`` whose output has passed through a ``Redactor``; a line logged while serving a
    request names its ``request_id``."""

    def __init__(self, redactor: Redactor, fmt: str | None = None) -> None:
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = current_request()
        if context is not None:
            first, newline, rest = line.partition("\n")
            line = f"{first} [request_id={context.request_id}]{newline}{rest}"
        return self.redactor(line)


class JsonFormatter(RedactingFormatter):
    """One JSON object per line; every string in it redacted on its own."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = current_request()
        if context is not None:
            entry["request_id"] = context.request_id
            if context.span.trace_id:
                entry["trace_id"] = context.span.trace_id
                entry["span_id"] = context.span.span_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_") and key not in entry:
                entry[key] = value
        return orjson.dumps(self.redactor.tree(entry)).decode()


class RedactingFilter(logging.Filter):
    """For handlers AILB does not format itself (e.g. a server's own): rewrites the record's message."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor(record.getMessage())
        record.args = None
        return True


def configure_logging(
    level: str = "info",
    *,
    secrets: Iterable[str] = (),
    redactor: Redactor | None = None,
    json_lines: bool = False,
    stream: TextIO | None = None,
) -> Redactor:
    """Install AILB's handler on the root logger (replacing a previous one); returns its ``Redactor`` (the one
    given, else a new one holding ``secrets``).

    Calling it again (e.g. after a reload with new keys) swaps the handler, never stacking a second one.
    """
    redactor = redactor if redactor is not None else Redactor(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter(redactor) if json_lines else RedactingFormatter(redactor))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return redactor
