"""The one way out to an upstream: a keep-alive client per deployment, and the mapping of its failures to ours.

Adapters call ``post_json``/``post_json_raw`` for whole answers, ``get_json`` for token-free calls and
``open_stream`` for streams (through ``relay.py``). The bytes move through ``http1.py``'s lean HTTP/1.1 client.
Every socket, TLS or HTTP failure leaves here as an ``UpstreamError`` made by ``map_transport_errors``; an error
status becomes one through the adapter's pure ``status_error``, which is handed the redactor so an upstream's text
is never public unredacted. A request made while tracing carries the attempt's W3C ``traceparent`` (see
``ailb.observability.context``). Redirects are never followed: a 3xx answer is the upstream's answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from time import time
from types import TracebackType
from typing import Any
from urllib.parse import quote

import orjson

from ailb.errors import (
    UpstreamConnectionError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
)
from ailb.observability.context import upstream_trace
from ailb.providers.errors import Redact
from ailb.providers.http1 import (
    Answer,
    Connection,
    MalformedAnswer,
    Origin,
    Silence,
    UpstreamDisconnected,
    header_lines,
)
from ailb.providers.pool import ConnectionPool
from ailb.settings import DeploymentConfig

ErrorTranslator = Callable[[int, bytes, str, float | None, Redact], UpstreamError]
MAX_ERROR_BODY = 64 * 1024
PROBE_SECONDS = 10.0
Watch = tuple[float, float | None] | tuple[float, float | None, float, float]  # Connection.watch's arguments


class _MappedErrors:
    __slots__ = ("deployment",)

    def __init__(self, deployment: str) -> None:
        self.deployment = deployment

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if isinstance(exc, Exception) and not isinstance(exc, UpstreamError):
            raise transport_error(exc, self.deployment) from exc


def map_transport_errors(deployment: str) -> _MappedErrors:
    """Turn any socket, TLS or HTTP failure inside the ``with`` block into our ``UpstreamError``; cancellation
    passes. (A class, not ``@contextmanager``: it wraps every upstream exchange.)"""
    return _MappedErrors(deployment)


def transport_error(exc: BaseException, deployment: str) -> UpstreamError:
    name = deployment
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, Silence) and exc.waited is not None:
        return UpstreamTimeoutError(f"Deployment '{name}' sent no {exc.waited}.", deployment=name)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return UpstreamTimeoutError(f"Deployment '{name}' timed out.", deployment=name)
    if isinstance(exc, ConnectionRefusedError):
        return UpstreamConnectionError(f"Deployment '{name}' refused the connection.", deployment=name)
    if isinstance(exc, UpstreamDisconnected | ConnectionResetError | BrokenPipeError):
        return UpstreamConnectionError(f"Deployment '{name}' dropped the connection.", deployment=name)
    if isinstance(exc, OSError):
        return UpstreamConnectionError(f"Deployment '{name}' could not be reached.", deployment=name)
    if isinstance(exc, MalformedAnswer):
        return UpstreamProtocolError(f"Deployment '{name}' sent an answer that is not HTTP/1.1.", deployment=name)
    return UpstreamProtocolError(f"Deployment '{name}' failed: {type(exc).__name__}.", deployment=name)


class Transport:
    """Keep-alive connections to one deployment's base URL, with its headers and timeouts."""

    def __init__(
        self, config: DeploymentConfig, headers: Mapping[str, str], translate_error: ErrorTranslator, redact: Redact
    ) -> None:
        self.config = config
        self.name = config.name
        self.base_url = config.base_url
        self._translate_error = translate_error
        self._redact = redact
        origin = Origin.of(config.base_url)
        self._pool = ConnectionPool(origin)
        self._base_path = quote(origin.base_path, safe="/%:@!$&'()*+,;=~")
        common = {"Host": origin.host_header, "Accept": "*/*", "Accept-Encoding": "gzip, deflate", **headers}
        self._get_head = header_lines(common) + b"\r\n"
        self._post_head = header_lines({**common, "Content-Type": "application/json"})

    def _post(self, path: str, payload: bytes) -> bytes:
        trace = upstream_trace()
        return b"".join(
            (
                b"POST ",
                (self._base_path + path).encode("ascii"),
                b" HTTP/1.1\r\n",
                self._post_head,
                b"" if trace is None else header_lines(dict(trace)),
                b"Content-Length: %d\r\n\r\n" % len(payload),
                payload,
            )
        )

    async def _begin(self, request: bytes, watch: Watch) -> tuple[Connection, Answer]:
        """Send ``request`` on a kept-alive connection (or a new one) and wait for the answer's head.

        A request that fails is not sent again here, not even when a kept-alive connection was closed under it
        with nothing answered: a POST may have been read and be generating, so only the router, which knows the
        budget and the other deployments, decides about trying again.
        """
        conn = self._pool.take_idle()
        if conn is None:
            async with asyncio.timeout(self.config.timeouts.connect):
                conn = await self._pool.connect()
        try:
            conn.watch(*watch)
            return conn, await conn.send(request)
        except BaseException:
            self._pool.release(conn)
            raise

    async def _whole(self, request: bytes, seconds: float) -> tuple[Answer, bytes]:
        deadline = asyncio.get_running_loop().time() + seconds
        with map_transport_errors(self.name):
            conn, answer = await self._begin(request, (deadline, None))
            try:
                body = await answer.read()
            finally:
                self._pool.release(conn)
        self._raise_for_status(answer, body)
        return answer, body

    async def post_json(self, path: str, payload: bytes) -> Any:
        """POST ``payload`` (JSON bytes) and return the parsed JSON answer."""
        return (await self.post_json_raw(path, payload))[1]

    async def post_json_raw(self, path: str, payload: bytes) -> tuple[bytes, Any]:
        """POST ``payload`` and return the answer's bytes with their parsed JSON (to pass the bytes on)."""
        # A whole answer arrives in one piece at the end, so only the total timeout can bound it.
        _, body = await self._whole(self._post(path, payload), self.config.timeouts.total)
        return body, self._parse(body)

    async def get_json(self, path: str) -> Any:
        request = b"GET " + (self._base_path + path).encode("ascii") + b" HTTP/1.1\r\n" + self._get_head
        _, body = await self._whole(request, min(PROBE_SECONDS, self.config.timeouts.total))
        return self._parse(body)

    def open_stream(self, path: str, payload: bytes) -> OpenStream:
        """POST ``payload``; ``async with`` it for the body's pieces once the headers arrived with a success status.

        Leaving the context (normally, by error or by cancellation) releases the connection; an unfinished
        body closes it, which is how a disconnected client cancels the upstream call.
        """
        return OpenStream(self, self._post(path, payload))

    def _raise_for_status(self, answer: Answer, body: bytes) -> None:
        if answer.status >= 400:
            retry_after = _retry_after(answer.headers)
            raise self._translate_error(answer.status, body[:MAX_ERROR_BODY], self.name, retry_after, self._redact)

    def _parse(self, body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(
                f"Deployment '{self.name}' returned a body that is not JSON.", deployment=self.name
            ) from exc

    async def aclose(self) -> None:
        self._pool.close()


class OpenStream:
    """One streamed exchange: entered, it sends the request and waits for a success head, and is then the async
    iterator of the body's raw pieces (the connection's watch enforces the first token, the idle gap and the
    total); left, it releases the connection. (A class, not ``@asynccontextmanager`` and an async generator: every
    stream opens one.)"""

    __slots__ = ("_answer", "_answered", "_conn", "_request", "_transport")

    def __init__(self, transport: Transport, request: bytes) -> None:
        self._transport = transport
        self._request = request
        self._conn: Connection | None = None
        self._answer: Answer | None = None
        self._answered = False

    async def __aenter__(self) -> OpenStream:
        transport = self._transport
        timeouts = transport.config.timeouts
        deadline = asyncio.get_running_loop().time() + timeouts.total
        # An upstream that never sends its headers is as stuck as one that never sends a token.
        watch = (deadline, timeouts.total, timeouts.first_token, timeouts.idle)
        with map_transport_errors(transport.name):
            conn, answer = await transport._begin(self._request, watch)
        if answer.status >= 400:
            try:
                with map_transport_errors(transport.name):
                    body = await answer.read(MAX_ERROR_BODY)
                transport._raise_for_status(answer, body)
            finally:
                transport._pool.release(conn)
        self._conn = conn
        self._answer = answer
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn, self._answer = self._conn, None, None
        if conn is not None:
            self._transport._pool.release(conn, answered=self._answered and kind is None)

    def answered(self) -> None:
        """The reader has all of the answer it wants (the upstream said it is over): leaving the ``async with``
        normally now keeps the connection, once the body's last bytes have come. Leaving without this (or by
        an error) closes it, which is how the upstream learns nobody reads on."""
        self._answered = True

    def __aiter__(self) -> OpenStream:
        return self

    async def __anext__(self) -> bytes:
        answer = self._answer
        if answer is None:  # left already
            raise StopAsyncIteration
        data = answer.ready_piece()
        if data is None:
            with map_transport_errors(self._transport.name):
                data = await answer.next_piece()
        if not data:
            raise StopAsyncIteration
        return data

    async def aclose(self) -> None:
        """Nothing to do: leaving the ``async with`` releases (or closes) the connection."""


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("retry-after-ms")
    if raw:
        try:
            return max(0.0, float(raw) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time())
    except (TypeError, ValueError):
        return None
