"""One HTTP/1.1 request and its response as the ASGI app sees them: the scope, ``receive`` and ``send``.

The connection (``protocol.py``) parses the request and hands its body over piece by piece; the exchange gives it
to the app and writes the app's answer. The head of a response is kept until its first body message, as the ASGI
spec asks, and goes out with it in one write, so a plain answer is one write (one system call). Response headers
are checked for bytes that would end their line early (header injection) on the whole block at once, not by a
regular expression per field.

The scope offers one extension beyond ASGI's, ``ON_DISCONNECT``: the app can be called back when the client's
connection is lost instead of keeping a task waiting on ``receive`` for ``http.disconnect``.
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from ailb.http.protocol import HttpProtocol

log = logging.getLogger("ailb.http")
HIGH_WATER = 65536  # request body bytes held for the app before the socket stops being read
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_BAD_NAME = re.compile(rb'[\x00-\x20\x7f-\xff()<>@,;:\[\]={}\\"/?]')  # what a header name's token must not hold
_CONTROL = bytes(c for c in range(32) if c != 9) + b"\x7f"  # control bytes: none in a header line but its CR LF
_FRAMING = frozenset((b"content-length", b"transfer-encoding", b"connection"))
_good_names: set[bytes] = set()  # names seen valid: checked once each (bounded below)
ON_DISCONNECT = "ailb.on_disconnect"
"""``scope["extensions"][ON_DISCONNECT](callback)`` calls ``callback`` once when the client's connection is lost
before the answer is whole (soon, when it is lost already) and returns a function that takes the call back."""


def _status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase.encode()
    except ValueError:
        phrase = b""
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase)


STATUS_LINE = {status: _status_line(status) for status in range(100, 600)}


def refusal(status: int, message: str, code: str, type_: str = "invalid_request_error", extra: bytes = b"") -> bytes:
    """A whole HTTP/1.1 response that closes the connection: status line, headers and an OpenAI error body."""
    body = orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})
    head = b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n" % len(body)
    return STATUS_LINE[status] + head + extra + b"\r\n" + body


INTERNAL_ERROR = refusal(
    500, "The gateway hit an internal error. It has been logged.", "internal_error", "server_error"
)


class _DefaultHeaders:
    """uvicorn's ``server_state.default_headers`` (the ``date`` it renews each second) as header lines."""

    def __init__(self) -> None:
        self._seen: list[tuple[bytes, bytes]] | None = None
        self._lines = b""

    def lines(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        if headers is not self._seen:
            self._lines = b"".join(b"%s: %s\r\n" % (name.lower(), value) for name, value in headers)
            self._seen = headers
        return self._lines


DEFAULT_HEADERS = _DefaultHeaders()


def nothing_to_stop() -> None:
    """An ``ON_DISCONNECT`` handle with nothing (left) to stop."""


def _check_name(name: bytes) -> None:
    """Refuse a header name that is not a token; remember a good one (the app sends the same few again)."""
    if not name or _BAD_NAME.search(name):
        raise RuntimeError(f"Invalid HTTP header name {name!r}.")
    if len(_good_names) < 4096:
        _good_names.add(name)


class Exchange:
    """One request on a connection and the app's answer to it."""

    __slots__ = (
        "_body",
        "_buffered",
        "_chunked",
        "_conn",
        "_delivered",
        "_head",
        "_remaining",
        "_transport",
        "_waiter",
        "_watchers",
        "bodyless",
        "complete",
        "continue_expected",
        "disconnected",
        "keep_alive",
        "more_body",
        "scope",
        "started",
        "task",
    )

    def __init__(self, conn: HttpProtocol, scope: dict[str, Any], keep_alive: bool, continue_expected: bool) -> None:
        self._conn = conn
        self._transport = conn.transport
        self.scope = scope
        self.keep_alive = keep_alive
        self.continue_expected = continue_expected
        self.bodyless = scope["method"] == "HEAD"
        self.task: asyncio.Task[None] | None = None
        # the request
        self._body: list[bytes] = []
        self._buffered = 0
        self.more_body = True
        self._delivered = False  # the last of the body was handed to the app
        self._waiter: asyncio.Future[None] | None = None  # made only when the app must wait
        self.disconnected = False
        self._watchers: list[Callable[[], None]] = []  # called back when the client is gone
        scope["extensions"] = {ON_DISCONNECT: self.on_disconnect}
        # the response
        self.started = False
        self.complete = False
        self._head: bytes | None = None  # written with the first body
        self._chunked = False
        self._remaining = -1  # Content-Length bytes still to send; -1: not counted

    @property
    def sent_anything(self) -> bool:
        return self.started and self._head is None

    # --- from the connection ---------------------------------------------------------------------------------
    def add_body(self, body: bytes) -> None:
        if self.complete:
            return  # answered already: the rest of the body is read and dropped
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER:
            self._conn.pause_reading()
        self.wake()

    def end_body(self) -> None:
        self.more_body = False
        self.wake()

    def lose(self) -> None:
        """The client is gone (or will be, being refused): the app's next ``receive`` says so, and whoever asked
        to be told (``on_disconnect``) is told now."""
        if not self.complete:
            self.disconnected = True
            watchers, self._watchers = self._watchers, []
            for callback in watchers:
                callback()
        self.wake()

    def on_disconnect(self, callback: Callable[[], None]) -> Callable[[], None]:
        """The ``ON_DISCONNECT`` extension."""
        if self.disconnected:
            self._conn.loop.call_soon(callback)
            return nothing_to_stop
        self._watchers.append(callback)
        return lambda: self._unwatch(callback)

    def _unwatch(self, callback: Callable[[], None]) -> None:
        if callback in self._watchers:
            self._watchers.remove(callback)

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- ASGI ------------------------------------------------------------------------------------------------
    async def run(self, app: Any) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            if not (self.disconnected and isinstance(exc, asyncio.CancelledError)):
                log.error("the app failed on %s %s", self.scope["method"], self.scope["path"], exc_info=exc)
            self._fail()
        else:
            if not self.complete and not self.disconnected:
                log.error("the app returned without a whole answer to %s %s", self.scope["method"], self.scope["path"])
                self._fail()
        finally:
            # (A task cancelled before its first step never gets here; only a forced shutdown does that.)
            self._conn.tasks.discard(self.task)
            # The scope's ``ON_DISCONNECT`` is this exchange's bound method: without it, the exchange, its scope,
            # task and whatever the app hung on them are freed here rather than left to the cyclic collector.
            extensions = self.scope.get("extensions")
            if extensions:
                extensions.pop(ON_DISCONNECT, None)

    def _fail(self) -> None:
        transport = self._transport
        if transport.is_closing():
            return
        if not self.sent_anything and not self.disconnected:
            transport.write(INTERNAL_ERROR)
        transport.close()

    async def receive(self) -> dict[str, Any]:
        if self.continue_expected:
            self.continue_expected = False
            if self.more_body and not self.started and not self._transport.is_closing():
                self._transport.write(CONTINUE)
        while True:
            if self.disconnected or self.complete:
                return {"type": "http.disconnect"}
            if self._body or not (self.more_body or self._delivered):
                return self._take()
            if self._conn.reading is self:
                self._conn.resume_reading()
            await self._wait()

    async def _wait(self) -> None:
        """Until the connection has news for the app (body, its end, the answer's end, a disconnect)."""
        waiter = self._waiter
        if waiter is None or waiter.done():
            waiter = self._waiter = self._conn.loop.create_future()
        try:
            await waiter
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise
            # Another receiver waiting on the same future was cancelled, not this one: look again.

    def _take(self) -> dict[str, Any]:
        pieces = self._body
        body = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self._body = []
        self._buffered = 0
        more = self.more_body
        if not more:
            self._delivered = True
        elif self._conn.reading is self:
            self._conn.resume_reading()
        return {"type": "http.request", "body": body, "more_body": more}

    async def send(self, message: dict[str, Any]) -> None:
        conn = self._conn
        if conn.write_paused and not self.disconnected:
            await conn.drain()
        if self.disconnected:
            return
        if not self.started:
            if message["type"] != "http.response.start":
                raise RuntimeError(f"Expected ASGI message 'http.response.start', but got {message['type']!r}.")
            self._start(message["status"], message.get("headers", ()))
            return
        if self.complete or message["type"] != "http.response.body":
            raise RuntimeError(f"Unexpected ASGI message {message['type']!r} in this answer.")
        body = message.get("body", b"")
        more = message.get("more_body", False)
        data = self._frame(body, more) if body or not more else b""
        head = self._head
        if head is not None:
            self._head = None
            data = head + data
        if data:
            self._transport.write(data)
        if not more:
            self._finish()

    def _frame(self, body: bytes, more: bool) -> bytes:
        """``body`` as it goes on the wire (nothing for a HEAD request or a status without a body)."""
        if self.bodyless:
            return b""
        if self._chunked:
            if not more:
                return b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
            return b"%x\r\n%b\r\n" % (len(body), body)
        if self._remaining >= 0:
            self._remaining -= len(body)
            if self._remaining < 0:
                raise RuntimeError("Response content longer than Content-Length")
        return body

    def _finish(self) -> None:
        if self._remaining > 0 and not self.bodyless:
            raise RuntimeError("Response content shorter than Content-Length")
        self.complete = True
        self.wake()
        self._conn.answered(self)

    def _start(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
        self.continue_expected = False
        lines: list[bytes] = []
        length = -1
        chunked = close = False
        for name, value in headers:
            name = name.lower()
            if name not in _good_names:
                _check_name(name)
            if name in _FRAMING:
                if name == b"content-length":
                    if not value.isdigit():
                        raise RuntimeError(f"Invalid Content-Length {value!r}.")
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = chunked or value.lower().strip() == b"chunked"
                else:
                    close = close or b"close" in value.lower()
            lines.append(b"%s: %s\r\n" % (name, value))
        block = b"".join(lines)
        # Each line ends with one CR and one LF: any other (or any other control byte) would be one too many.
        if len(block) - len(block.translate(None, _CONTROL)) != 2 * len(lines):
            raise RuntimeError("Invalid HTTP header value: a header may not hold a line break or a control byte.")
        self._head = self._head_bytes(status, block, length, chunked, close)
        self.started = True

    def _head_bytes(self, status: int, block: bytes, length: int, chunked: bool, close: bool) -> bytes:
        if status < 200 or status in (204, 304):
            self.bodyless = True
        if close:
            self.keep_alive = False
        extra = b""
        if not self.keep_alive and not close:
            extra = b"connection: close\r\n"
        if chunked:
            self._chunked = True
        elif length >= 0:
            self._remaining = length
        elif not self.bodyless:
            if self.scope["http_version"] == "1.1":
                self._chunked = True
                extra += b"transfer-encoding: chunked\r\n"
            else:
                self.keep_alive = False  # an HTTP/1.0 client: the body ends with the connection
        line = STATUS_LINE.get(status) or _status_line(status)
        defaults = DEFAULT_HEADERS.lines(self._conn.server_state.default_headers)
        return b"%b%b%b%b\r\n" % (line, defaults, block, extra)
