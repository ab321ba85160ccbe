"""What the code serving one request knows about it without being told: its id and its span.

The HTTP edge (``http/app.py``) sets a ``RequestContext`` once per request; everything that runs for that
request (its own task and the tasks it starts) sees it. The JSON log formatter reads the request id and trace
id from it; routes enrich its span and note what the request's metrics need. ``upstream_trace`` holds the W3C
trace headers of the upstream attempt under way, which ``providers/transport.py`` sends along.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from random import getrandbits

from ailb.observability.tracing import NO_SPAN, RequestSpan

REQUEST_ID_HEADER = b"x-request-id"
_SAFE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


class RequestContext:
    """One request's id and span, and what its metrics need that only the route learns: the model asked for,
    the deployment that answered and its own time (``routed``), when the first streamed byte went out and the
    status of a stream that failed after it. The HTTP edge records the metrics from them once the response is
    sent."""

    __slots__ = ("deployment", "failure", "first_byte", "model", "request_id", "span", "upstream")

    def __init__(self, request_id: str, span: RequestSpan = NO_SPAN) -> None:
        self.request_id = request_id
        self.span = span
        self.model = ""
        self.deployment = ""
        self.upstream = 0.0  # seconds the deployment took
        self.first_byte: float | None = None  # perf_counter() when a stream's first byte was sent
        self.failure = 0  # the status a stream failed with after its first byte (it began with 200)

    def routed(self, deployment: str, upstream_seconds: float) -> None:
        self.deployment = deployment
        self.upstream = upstream_seconds


_CURRENT: ContextVar[RequestContext | None] = ContextVar("ailb_request", default=None)
_UPSTREAM_TRACE: ContextVar[Mapping[str, str] | None] = ContextVar("ailb_upstream_trace", default=None)


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's ``x-request-id`` when it is safe to repeat (at most 128 of ``A-Z a-z 0-9 . _ : -``), else a
    new random one: 16 hex digits. An id must be unique, not unguessable (it grants nothing), so it comes from the
    process's seeded generator (reseeded in every forked worker), not from a system call per request."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _SAFE_REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return f"{getrandbits(64):016x}"


def enter_request(context: RequestContext) -> Token[RequestContext | None]:
    return _CURRENT.set(context)


def leave_request(token: Token[RequestContext | None]) -> None:
    _CURRENT.reset(token)


def current_request() -> RequestContext | None:
    return _CURRENT.get()


def request_context() -> RequestContext:
    """The context of the request being served; outside of one (a route called directly), a new one."""
    context = _CURRENT.get()
    return RequestContext("") if context is None else context


def request_span() -> RequestSpan:
    """The span of the request being served (the no-op span when there is none or tracing is off)."""
    context = _CURRENT.get()
    return NO_SPAN if context is None else context.span


def set_upstream_trace(headers: Mapping[str, str] | None) -> None:
    _UPSTREAM_TRACE.set(headers)


def upstream_trace() -> Mapping[str, str] | None:
    """The trace headers (``traceparent``, ``tracestate``) for the upstream request about to be sent."""
    return _UPSTREAM_TRACE.get()
