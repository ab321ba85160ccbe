"""AILB's HTTP/1.1 server protocol: httptools' parser, ASGI exchanges (``exchange.py``) and the limits a server on
an open network needs.

uvicorn's ``Server`` still runs the show (lifespan, signals, graceful drain, workers) and builds one of these per
connection; this replaces uvicorn's own httptools protocol, doing less per request: the scope is one dict built
from parts worked out once per connection, a response's head goes out with its first body in one write, no
regular expression runs per request, and no timer or task is made per request beyond the one running the app.

The limits, per connection:

- ``max_header_bytes``: the request line and header fields together (431 beyond it), counted as bytes arrive,
  so an oversized head is refused after the limit, not after it has been buffered whole;
- ``max_headers``: header fields per request (431);
- ``header_timeout``: from the connection's start, or from a kept-alive request's first byte, to the end of its
  head (408, or a silent close when nothing was sent);
- ``body_timeout``: the longest pause while the body arrives (408; the app sees a client disconnect) — not
  counted while the app itself has stopped reading;
- ``keepalive_timeout``: idle time between requests (then the connection is closed);
- ``max_connections``: open connections; one more gets a 503 with ``Retry-After`` and is closed.

The timeouts share one timer per connection: each received chunk only notes the time it arrived, and the timer,
when it fires, re-arms itself for the deadline in force then, or sooner (never later than the shortest timeout
from now, so a deadline that starts meanwhile is never missed).

Every refusal is an OpenAI-shaped JSON error, written only when no response is under way on the connection. An
``Upgrade`` request is answered as plain HTTP and the connection closed after it (no other protocol is spoken).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, ClassVar, cast
from urllib.parse import unquote

import httptools
from mypy_extensions import mypyc_attr
from uvicorn.config import Config
from uvicorn.protocols.utils import get_local_addr, get_remote_addr, is_ssl
from uvicorn.server import ServerState

from ailb.http.exchange import Exchange, refusal
from ailb.settings import HttpLimits

log = logging.getLogger("ailb.http")
REFUSAL_LOG_INTERVAL = 60.0
_HEAD, _BODY = 1, 2  # what the connection is reading: a request's head (or waiting for one), or its body
_ASGI = {"version": "3.0", "spec_version": "2.3"}
_METHODS = {m.encode(): m for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")}
__all__ = ["HttpProtocol", "limited_protocol", "refusal"]


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


def _target(url: bytes) -> tuple[bytes, bytes]:
    """The raw path and query string of a request target."""
    if url[:1] == b"/" and b"#" not in url:
        path, _, query = url.partition(b"?")
        return path, query
    parsed = httptools.parse_url(url)  # absolute form, or a fragment to drop
    return parsed.path or b"/", parsed.query or b""


# Compiled (see ailb.compiled), uvicorn's connections are built from a subclass made at start-up (limited_protocol).
@mypyc_attr(allow_interpreted_subclasses=True)
class HttpProtocol(asyncio.Protocol):
    """Build subclasses with :func:`limited_protocol`; uvicorn's ``Server`` makes one per connection."""

    limits: ClassVar[HttpLimits] = HttpLimits()
    refusals: ClassVar[_Refusals] = _Refusals(limits)
    last_refusal_log: ClassVar[list[float]] = [0.0]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.connections = cast(set[Any], server_state.connections)
        self.tasks = server_state.tasks
        self._app_state = app_state
        self._root_path = config.root_path
        self._parser = httptools.HttpRequestParser(self)
        self._parser.set_dangerous_leniencies(lenient_data_after_close=True)  # answer a pipelined first request
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self._scope_base: dict[str, Any] = {}
        self.active: Exchange | None = None  # the exchange the app is answering (or answered last)
        self.reading: Exchange | None = None  # the exchange whose body is being read
        self._pipeline: deque[Exchange] = deque()
        self.read_paused = self.write_paused = False
        self._writable: asyncio.Future[None] | None = None
        self._upgraded = False
        # the request being parsed
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._add_header = self._headers.append
        self._continue = False
        # limits
        self._phase = _HEAD
        self._head_bytes = 0  # of the head being read
        self._head_since = 0.0  # loop time the head's first bytes arrived (or the connection opened); 0 until then
        self._last_data = 0.0  # loop time the last bytes arrived
        self._idle_since = 0.0  # loop time the last answer ended
        self._timer: asyncio.TimerHandle | None = None

    # --- connection ------------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's subclasses
        if len(self.connections) >= self.limits.max_connections:
            self.transport.write(self.refusals.too_many_connections)
            self.transport.close()
            self._log_refusal()
            return
        self.connections.add(self)
        self._scope_base = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": "1.1",
            "server": get_local_addr(self.transport),
            "client": get_remote_addr(self.transport),
            "scheme": "https" if is_ssl(self.transport) else "http",
            "root_path": self._root_path,
        }
        self._head_since = self._last_data = self.loop.time()  # a connection owes its first head from now on
        self._timer = self.loop.call_later(self._poll_interval(), self._check_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for exchange in (self.active, self.reading):
            if exchange is not None:
                exchange.lose()
        self.resume_writing()
        if exc is None and self.transport is not None:
            self.transport.close()

    def eof_received(self) -> None:
        pass  # the transport closes: a client that half-closes is a client gone

    def data_received(self, data: bytes) -> None:
        # The hot path: one clock read and a counter per chunk.
        now = self._last_data = self.loop.time()
        if self._phase == _HEAD:
            if not self._head_since:  # the first bytes of a kept-alive connection's next request
                self._head_since = now
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._feed_beyond_head_limit(data)
                return
        self._feed(data)

    def shutdown(self) -> None:
        """uvicorn's drain: close an idle connection now, a busy one after its answer."""
        active = self.active
        if active is None or active.complete:
            self.transport.close()
        else:
            active.keep_alive = False

    # --- flow control ----------------------------------------------------------------------------------------
    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    async def drain(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = self.loop.create_future()
        await asyncio.shield(self._writable)  # one sender cancelled must not cancel the future of another

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()

    # --- parser callbacks ------------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._add_header = self._headers.append
        self._continue = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self._continue = True
        self._add_header((name, value))

    def on_headers_complete(self) -> None:
        headers = self._headers
        if len(headers) > self.limits.max_headers:
            raise _Refused(self.refusals.too_many_headers)
        parser = self._parser
        method = parser.get_method()
        raw_path, query = _target(self._url)
        path = raw_path.decode("ascii")
        scope = self._scope_base.copy()
        scope["method"] = _METHODS.get(method) or method.decode("ascii")
        scope["path"] = self._root_path + unquote(path) if "%" in path else self._root_path + path
        scope["raw_path"] = raw_path
        scope["query_string"] = query
        scope["headers"] = headers
        scope["state"] = self._app_state.copy()
        version = parser.get_http_version()
        if version != "1.1":
            scope["http_version"] = version
        keep_alive = version == "1.1" and parser.should_keep_alive() and not parser.should_upgrade()
        exchange = self.reading = Exchange(self, scope, keep_alive, self._continue)
        self._phase = _BODY  # (only now: a head refused above is answered as a head)
        self._head_bytes = 0
        self._head_since = 0.0
        active = self.active
        if active is None or active.complete:
            self._start(exchange)
        else:  # pipelined: answered in turn, and nothing more is read until then
            self.pause_reading()
            self._pipeline.append(exchange)

    def on_body(self, body: bytes) -> None:
        self.reading.add_body(body)  # type: ignore[union-attr]

    def on_message_complete(self) -> None:
        self._phase = _HEAD  # bytes from now on belong to the next request's head
        self.reading.end_body()  # type: ignore[union-attr]

    # --- exchanges -------------------------------------------------------------------------------------------
    def _start(self, exchange: Exchange) -> None:
        self.active = exchange
        task = exchange.task = self.loop.create_task(exchange.run(self.app))
        self.tasks.add(task)

    def answered(self, exchange: Exchange) -> None:
        """``exchange``'s answer is whole: close, or go on with the next request."""
        self.server_state.total_requests += 1
        if not exchange.keep_alive:
            self.transport.close()
            return
        if self.transport.is_closing():
            return
        self._idle_since = self.loop.time()
        if self._pipeline:
            self._start(self._pipeline.popleft())
        self.resume_reading()

    # --- internals -------------------------------------------------------------------------------------------
    def _feed(self, data: bytes) -> bool:
        """Parse ``data``; False when the connection is being closed (the rest of the data is not wanted)."""
        if self._upgraded:
            return False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # No other protocol here: the request was dispatched as plain HTTP when its head ended, not to be kept
            # alive (what follows its head is not HTTP to this parser), so the connection closes after its answer.
            self._upgraded = True
            return False
        except httptools.HttpParserError as exc:
            refused = exc.__context__
            self._refuse(refused.response if isinstance(refused, _Refused) else self.refusals.bad_request)
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

    def _poll_interval(self) -> float:
        limits = self.limits
        return min(limits.header_timeout, limits.body_timeout, limits.keepalive_timeout)

    def _check_deadline(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        due = self._due(now)
        if now < due:
            self._timer = self.loop.call_later(min(due - now, self._poll_interval()), self._check_deadline)
            return
        if self._head_since:
            if not self._head_bytes:
                self.transport.close()  # a connection that never sent a byte (or idle) gets no answer
                return
        elif self._phase != _BODY:
            self.transport.close()  # kept alive and idle too long
            return
        part = "head" if self._head_since else "body"
        log.debug("closing a connection: its request %s was not received in time", part)
        self._refuse(self.refusals.timeout)

    def _due(self, now: float) -> float:
        """When the connection's current state runs out of time (inf: the app is answering)."""
        limits = self.limits
        if self._head_since:
            return self._head_since + limits.header_timeout
        if self._phase == _BODY:
            if self.read_paused:  # the app has not taken what was sent: the client is not at fault
                self._last_data = now
            return self._last_data + limits.body_timeout
        active = self.active
        if active is None or active.complete:
            return self._idle_since + limits.keepalive_timeout
        return float("inf")

    def _refuse(self, response: bytes) -> None:
        """Answer ``response`` (when no other response is under way here) and close the connection."""
        if self.transport.is_closing():
            return
        if self._may_answer():
            self.transport.write(response)
        for exchange in (self.active, self.reading):
            if exchange is not None:
                exchange.lose()
        self.transport.close()

    def _may_answer(self) -> bool:
        exchange = self.reading
        if exchange is None:
            return True
        if self._phase == _BODY:  # this request's body was being read
            return not exchange.sent_anything
        return exchange.complete  # a new head: the previous answer must be whole

    def _log_refusal(self) -> None:
        now = time.monotonic()
        if now - self.last_refusal_log[0] >= REFUSAL_LOG_INTERVAL:
            self.last_refusal_log[0] = now
            log.warning("refusing connections: MAX_CONNECTIONS=%d are open", self.limits.max_connections)


def limited_protocol(limits: HttpLimits) -> type[HttpProtocol]:
    """The protocol class uvicorn should build connections with (``uvicorn.Config(http=...)``)."""
    attributes = {"limits": limits, "refusals": _Refusals(limits), "last_refusal_log": [0.0]}
    return cast(type[HttpProtocol], type("AILBHttpProtocol", (HttpProtocol,), attributes))
