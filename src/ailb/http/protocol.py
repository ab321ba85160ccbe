"""uvicorn's httptools protocol with the limits a server on an open network needs.

uvicorn reads a request head of any size, any number of header fields, and waits forever for a client that
sends nothing or one byte at a time. This subclass adds, per connection:

- ``max_header_bytes``: the request line and header fields together (431 beyond it), counted as bytes arrive,
  so an oversized head is refused after the limit, not after it has been buffered whole;
- ``max_headers``: header fields per request (431);
- ``header_timeout``: from the connection's start, or from a kept-alive request's first byte, to the end of its
  head (408, or a silent close when nothing was sent);
- ``body_timeout``: the longest pause while the body arrives (408; the app sees a client disconnect) — not
  counted while the app itself has stopped reading;
- ``keepalive_timeout``: idle time between requests (uvicorn's own keep-alive timer);
- ``max_connections``: open connections; one more gets a 503 with ``Retry-After`` and is closed.

The timeouts share one timer per connection that is armed lazily: each received chunk only notes the time it
arrived, and the timer, when it fires, re-arms itself for the deadline in force then. So a busy keep-alive
connection costs one clock reading per chunk and no timer per request.

Every refusal is an OpenAI-shaped JSON error, written only when no response is under way on the connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from asyncio import TimerHandle
from typing import Any, ClassVar, cast

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ailb.settings import HttpLimits

log = logging.getLogger("ailb.http")
REFUSAL_LOG_INTERVAL = 60.0
_HEAD, _BODY = 1, 2  # what the connection is reading: a request's head (or waiting for one), or its body


def refusal(status: int, message: str, code: str, type_: str = "invalid_request_error", extra: bytes = b"") -> bytes:
    """A whole HTTP/1.1 response that closes the connection: status line, headers and an OpenAI error body."""
    body = orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})
    head = b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n" % len(body)
    return STATUS_LINE[status] + head + extra + b"\r\n" + body


class _Refused(Exception):
    """Raised from a parser callback: answer ``response`` and close."""

    def __init__(self, response: bytes) -> None:
        super().__init__()
        self.response = response


class _Refusals:
    """The canned answers for one set of limits, built once."""

    def __init__(self, limits: HttpLimits) -> None:
        self.head_too_large = refusal(
            431,
            f"Request header fields too large: the request line and headers may take at most "
            f"{limits.max_header_bytes} bytes.",
            "request_header_fields_too_large",
        )
        self.too_many_headers = refusal(
            431, f"Too many header fields: at most {limits.max_headers} are accepted.", "too_many_header_fields"
        )
        self.timeout = refusal(408, "The request was not received in time.", "request_timeout")
        self.bad_request = refusal(400, "Invalid HTTP request received.", "invalid_http_request")
        self.too_many_connections = refusal(
            503,
            "The gateway has reached its connection limit; try again shortly.",
            "too_many_connections",
            "server_error",
            b"retry-after: 1\r\n",
        )


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """Build subclasses with :func:`limited_protocol`; uvicorn instantiates one per connection."""

    limits: ClassVar[HttpLimits] = HttpLimits()
    refusals: ClassVar[_Refusals] = _Refusals(limits)
    last_refusal_log: ClassVar[list[float]] = [0.0]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = self.limits.keepalive_timeout  # type: ignore[assignment]
        self._phase = _HEAD
        self._head_bytes = 0  # of the head being read
        self._head_since = 0.0  # loop time the head's first bytes arrived (or the connection opened); 0 until then
        self._last_data = 0.0  # loop time the last bytes arrived
        self._deadline: TimerHandle | None = None

    # --- connection ------------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self.transport = transport
            transport.write(self.refusals.too_many_connections)
            transport.close()
            self._log_refusal()
            return
        super().connection_made(transport)
        self._head_since = self._last_data = self.loop.time()  # a connection owes its first head from now on
        self._deadline = self.loop.call_later(self.limits.header_timeout, self._check_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # The hot path: one clock read and a counter per chunk; the parser callbacks below reuse the reading.
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        now = self._last_data = self.loop.time()
        if self._phase == _HEAD:
            if not self._head_since:  # the first bytes of a kept-alive connection's next request
                self._head_since = now
                if self._deadline is None:
                    self._deadline = self.loop.call_later(self.limits.header_timeout, self._check_deadline)
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._feed_beyond_head_limit(data)
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # no WebSocket here: the request was dispatched as plain HTTP when its head ended
        except httptools.HttpParserError as exc:
            self._parse_failed(exc)

    # --- parser callbacks ------------------------------------------------------------------------------------
    def on_headers_complete(self) -> None:
        if len(self.headers) > self.limits.max_headers:
            raise _Refused(self.refusals.too_many_headers)
        self._phase = _BODY
        self._head_bytes = 0
        self._head_since = 0.0
        HttpToolsProtocol.on_headers_complete(self)

    def on_message_complete(self) -> None:
        self._phase = _HEAD  # bytes from now on belong to the next request's head
        HttpToolsProtocol.on_message_complete(self)

    # --- internals -------------------------------------------------------------------------------------------
    def _parse_failed(self, exc: httptools.HttpParserError) -> None:
        refused = exc.__context__
        self._refuse(refused.response if isinstance(refused, _Refused) else self.refusals.bad_request)

    def _feed(self, data: bytes) -> bool:
        """Parse ``data``; False when the connection is being closed (the rest of the data is not wanted)."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            return False
        except httptools.HttpParserError as exc:
            self._parse_failed(exc)
            return False
        return True

    def _feed_beyond_head_limit(self, data: bytes) -> None:
        """``data`` takes the head past its limit, unless the head ends within the bytes still allowed."""
        room = len(data) - (self._head_bytes - self.limits.max_header_bytes)
        if room > 0 and not self._feed(data[:room]):
            return
        if self._phase == _HEAD:
            self._refuse(self.refusals.head_too_large)
            return
        if not self.transport.is_closing():
            self._feed(data[room:])

    def _check_deadline(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self._head_since:
            due = self._head_since + self.limits.header_timeout
        elif self._phase == _BODY:
            if self.flow.read_paused:  # the app has not taken what was sent: the client is not at fault
                self._last_data = now
            due = self._last_data + self.limits.body_timeout
        else:
            return  # between requests (uvicorn's keep-alive timer runs) or the app is answering
        if now < due:
            self._deadline = self.loop.call_later(due - now, self._check_deadline)
            return
        if self._head_since and not self._head_bytes:
            self.transport.close()  # a connection that never sent a byte gets no answer
            return
        part = "head" if self._head_since else "body"
        log.debug("closing a connection from %s: its request %s was not received in time", self.client, part)
        self._refuse(self.refusals.timeout)

    def _refuse(self, response: bytes) -> None:
        """Answer ``response`` (when no other response is under way here) and close the connection."""
        if self.transport.is_closing():
            return
        if self._may_answer():
            self.transport.write(response)
        self.transport.close()

    def _may_answer(self) -> bool:
        cycle = self.cycle
        if cycle is None:
            return True
        if self._phase == _BODY:  # this request's body was being read
            return not cycle.response_started
        return cycle.response_complete  # a new head: the previous answer must be whole

    def _log_refusal(self) -> None:
        now = time.monotonic()
        if now - self.last_refusal_log[0] >= REFUSAL_LOG_INTERVAL:
            self.last_refusal_log[0] = now
            log.warning("refusing connections: MAX_CONNECTIONS=%d are open", self.limits.max_connections)


def limited_protocol(limits: HttpLimits) -> type[LimitedHttpToolsProtocol]:
    """The protocol class uvicorn should build connections with (``uvicorn.Config(http=...)``)."""
    attributes = {"limits": limits, "refusals": _Refusals(limits), "last_refusal_log": [0.0]}
    return cast(type[LimitedHttpToolsProtocol], type("AILBHttpProtocol", (LimitedHttpToolsProtocol,), attributes))
