"""A lean HTTP/1.1 client for upstream calls: keep-alive connections to one origin, answers parsed by httptools.

An upstream call is one request on one connection at a time. The request goes out in a single write (its head is
mostly prepared once per deployment); the answer's body arrives as the pieces the socket delivered, which is what a
stream relays. A connection goes back to its pool (``pool.py``) only when its answer was read whole and both sides
keep it alive; an answer abandoned half way (an error, a timeout, a cancelled call) closes its connection, which is
how the upstream learns the client went away.

Failures leave as plain exceptions (``OSError`` from sockets and TLS, ``UpstreamDisconnected`` when the upstream
closes before its answer is whole, ``MalformedAnswer`` for bytes that are not HTTP); ``transport.py`` maps them to
``UpstreamError``.
"""

from __future__ import annotations

import asyncio
import math
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

MAX_HEAD_BYTES = 64 * 1024  # an answer's header fields together: an upstream can't make AILB buffer more
_PAUSE_ABOVE = 1 << 20  # unread body bytes at which the socket stops being read until the reader catches up
# A stream's reader may be done before its body's last bytes came (an upstream that writes a chunked body's
# terminator apart from the last event, as uvicorn and Go's net/http do): its connection waits this long, and
# for no more than this many more bytes, for them, then goes back to the pool instead of being closed.
FINISH_SECONDS = 1.0
_FINISH_BYTES = 64 * 1024


class UpstreamDisconnected(ConnectionError):
    """The upstream closed the connection before its answer was whole."""


class MalformedAnswer(Exception):
    """The upstream's bytes are not an HTTP/1.1 answer this client can read."""


class Silence(TimeoutError):
    """The upstream sent nothing in time: ``waited`` says what for (None: the whole exchange ran out of time)."""

    def __init__(self, waited: str | None) -> None:
        super().__init__(waited or "the upstream's answer took too long")
        self.waited = waited


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a base URL's requests go, worked out once per deployment."""

    host: str
    port: int
    tls: bool
    host_header: str
    base_path: str

    @classmethod
    def of(cls, base_url: str) -> Origin:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"an upstream base URL must be http(s)://host[:port][/path], not {base_url!r}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        host_header = shown if port == (443 if tls else 80) else f"{shown}:{port}"
        return cls(host, port, tls, host_header, parts.path.rstrip("/"))


def header_lines(headers: dict[str, str]) -> bytes:
    """Headers as request lines; a name or value that could end its line early is refused."""
    lines = []
    for name, value in headers.items():
        if any(c in name for c in "\r\n:") or "\r" in value or "\n" in value:
            raise ValueError(f"the upstream header {name!r} holds a line break or a colon in its name")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


class Answer:
    """The head of an upstream's answer, with its body read whole or piece by piece."""

    __slots__ = ("_conn", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], conn: Connection) -> None:
        self.status = status
        self.headers = headers  # lower-case names
        self._conn = conn

    async def read(self, limit: int | None = None) -> bytes:
        """The rest of the body (at most about ``limit`` bytes, then the connection is given up)."""
        pieces = []
        size = 0
        while piece := await self._conn.next_piece():
            pieces.append(piece)
            size += len(piece)
            if limit is not None and size >= limit:
                self._conn.close()
                return b"".join(pieces)[:limit]
        return b"".join(pieces)

    async def next_piece(self) -> bytes:
        """The body that arrived since the last read, in one piece; ``b""`` once it is whole."""
        return await self._conn.next_piece()

    def ready_piece(self) -> bytes | None:
        """What ``next_piece`` would return if it can be had without waiting, else None."""
        return self._conn.ready_piece()


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._headers: dict[str, str] = {}
        self._head_bytes = 0
        self._head: asyncio.Future[Answer] | None = None
        self._pieces: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._decoder: zlib._Decompress | None = None
        self._length_known = False
        self.complete = True
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0
        self._error: BaseException | None = None
        self._refusal: MalformedAnswer | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._total: float | None = None
        self._gap = self._next_gap = math.inf
        self._heard_at = 0.0
        self._heard_body = False
        self._finished_by: Callable[[Connection], None] | None = None  # see ``finish_unread``

    def send(self, request: bytes) -> asyncio.Future[Answer]:
        assert self._transport is not None and self.complete
        self.complete = self.reusable = False
        self._headers = {}
        self._head_bytes = 0
        self._decoder = None
        self._length_known = False
        self._head = self._loop.create_future()
        self._transport.write(request)
        return self._head

    def watch(self, deadline: float, total: float | None, first: float = math.inf, idle: float = math.inf) -> None:
        """Fail the exchange at ``deadline`` (``total`` seconds after it began: named in the error when given), or
        when the upstream is silent for ``first`` seconds before the body's first bytes (headers included) or for
        ``idle`` seconds between pieces.

        One timer per exchange, armed lazily: a piece arriving only notes the time, and the timer, when it fires,
        re-arms itself for the deadline in force then; a reader that fell behind (reading paused) is not silence.
        """
        now = self._loop.time()
        self._deadline, self._total = deadline, total
        self._gap, self._next_gap = first, idle
        self._heard_at, self._heard_body = now, False
        self._timer = self._loop.call_at(min(now + first, deadline), self._check_silence)

    def _check_silence(self) -> None:
        self._timer = None
        if self.complete or self.closed:
            return
        now = self._loop.time()
        if now >= self._deadline:
            self._fail(Silence(None if self._total is None else f"whole answer within {self._total:g}s"))
            return
        due = now + self._gap if self._paused else self._heard_at + self._gap
        if now >= due:
            self._fail(Silence(f"{'next chunk' if self._heard_body else 'first token'} within {self._gap:g}s"))
            return
        self._timer = self._loop.call_at(min(due, self._deadline), self._check_silence)

    def _stop_watching(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def keeps_alive(self) -> bool:
        """Whether the answer under way may leave the connection open for another (its head came, nothing failed,
        and neither side said ``Connection: close``)."""
        head = self._head
        return (
            not self.closed
            and self._error is None
            and head is not None
            and head.done()
            and self._length_known
            and self._parser.should_keep_alive()
        )

    def finish_unread(self, adopt: Callable[[Connection], None]) -> None:
        """The reader has the whole answer it wanted but the body's end has not come yet: what still comes is
        dropped, and once the body ends (within ``FINISH_SECONDS`` and ``_FINISH_BYTES``) ``adopt`` gets the
        connection; otherwise it is closed."""
        self._drop_pieces()
        self._finished_by = adopt
        self._stop_watching()
        self.watch(self._loop.time() + FINISH_SECONDS, None)

    def ready_piece(self) -> bytes | None:
        if self._pieces:
            return self._take()
        if self.complete:
            return b""
        return None

    async def next_piece(self) -> bytes:
        while not self._pieces:
            if self.complete:
                return b""
            if self._error is not None:
                raise self._error
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._take()

    def _take(self) -> bytes:
        """Everything that arrived since the last take, as one piece (a read's worth, like the socket gave it)."""
        pieces = self._pieces
        piece = pieces.popleft() if len(pieces) == 1 else b"".join(pieces)
        self._drop_pieces()
        return piece

    def _drop_pieces(self) -> None:
        """Nothing unread any more: a socket paused for the reader is read again."""
        self._pieces.clear()
        self._buffered = 0
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    def close(self) -> None:
        self._stop_watching()
        self._finished_by = None
        self.reusable = False
        if self._transport is not None and not self.closed:
            self._transport.close()
        self.closed = True

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses

    def data_received(self, data: bytes) -> None:
        if self.complete:  # bytes nobody asked for: the connection can't be trusted with another request
            self.close()
            return
        pieces = self._pieces
        count = len(pieces)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(self._refusal or MalformedAnswer(f"the upstream's answer is not HTTP/1.1 ({exc})"))
            return
        if len(pieces) != count:  # body arrived (once per socket read, not per chunk of a chunked body)
            if self._decoder is None:  # (a decoder counts what it makes, piece by piece)
                self._buffered += len(data)  # the body's bytes and no more than their framing besides
            if self._buffered > _PAUSE_ABOVE and not self._paused and self._transport is not None:
                self._paused = True
                self._transport.pause_reading()
            if self._timer is not None:
                self._heard(self._timer, self._loop.time())
            self._wake()

    def _heard(self, timer: asyncio.TimerHandle, now: float) -> None:
        self._heard_at = now
        if not self._heard_body:
            self._heard_body, self._gap = True, self._next_gap
            # The timer may wait for the first token's (longer) limit: bring it forward to the idle gap's.
            timer.cancel()
            self._timer = self._loop.call_at(min(now + self._gap, self._deadline), self._check_silence)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self.complete or self._error is not None:  # whole, or failed already (a timeout closed it)
            return
        if self._head is not None and self._head.done() and not self._length_known:
            self._finish()  # a body delimited by the end of the connection
            return
        self._fail(UpstreamDisconnected("the upstream closed the connection before its answer was whole"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refusal = MalformedAnswer(f"the upstream's answer head is over {MAX_HEAD_BYTES} bytes")
            raise self._refusal
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self._headers[key] = f"{self._headers[key]}, {text}" if key in self._headers else text

    def on_headers_complete(self) -> None:
        headers = self._headers
        self._length_known = "content-length" in headers or "transfer-encoding" in headers
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "deflate", "x-gzip"):
            self._decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)
        elif encoding not in ("identity", ""):
            self._refusal = MalformedAnswer(f"the upstream sent a body encoded as {encoding!r}, not asked for")
            raise self._refusal
        status = self._parser.get_status_code()
        if status < 200:  # an interim answer (100 Continue): the real one follows
            return
        if self._head is not None and not self._head.done():
            self._head.set_result(Answer(status, headers, self))

    def on_body(self, body: bytes) -> None:
        if self._finished_by is not None:  # nobody reads it any more
            self._buffered += len(body)
            if self._buffered > _FINISH_BYTES:
                self.close()
            return
        if self._decoder is not None:
            body = self._decoder.decompress(body)
            if not body:
                return
            self._buffered += len(body)
        self._pieces.append(body)

    def on_message_complete(self) -> None:
        if self._parser.get_status_code() < 200:
            return
        self.reusable = self._parser.should_keep_alive() and not self.closed
        self._finish()

    def _finish(self) -> None:
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                self._pieces.append(tail)
        self.complete = True
        self._stop_watching()
        self._wake()
        adopt, self._finished_by = self._finished_by, None
        if adopt is not None and not self.closed:
            self._drop_pieces()  # and the count of the bytes dropped while finishing, or the next answer inherits it
            adopt(self)

    def _fail(self, exc: BaseException) -> None:
        self._stop_watching()
        self._error = exc
        if self._head is not None and not self._head.done():
            self._head.set_exception(exc)
        self._wake()
        self.close()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
