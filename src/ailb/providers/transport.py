"""The one seam to aiohttp: a pooled client per deployment, and the mapping of its failures to ours.

Adapters call ``post_json``/``post_json_raw`` for whole answers, ``get_json`` for token-free calls and
``open_stream`` for streams (through ``relay.py``). Every aiohttp or socket failure leaves here as an
``UpstreamError`` made by ``map_transport_errors``; an error status becomes one through the adapter's pure
``status_error``, which is handed the redactor so an upstream's text is never public unredacted. A request
made while tracing carries the attempt's W3C ``traceparent`` (see ``ailb.observability.context``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from email.utils import parsedate_to_datetime
from time import time
from typing import Any

import aiohttp
import orjson

from ailb.errors import (
    UpstreamConnectionError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
)
from ailb.observability.context import upstream_trace
from ailb.providers.errors import Redact
from ailb.settings import DeploymentConfig

ErrorTranslator = Callable[[int, bytes, str, float | None, Redact], UpstreamError]
MAX_ERROR_BODY = 64 * 1024
_JSON = {"Content-Type": "application/json"}


@contextmanager
def map_transport_errors(deployment: str, timer: asyncio.Timeout | None = None, waited: str = "") -> Iterator[None]:
    """Turn any aiohttp or socket failure inside the block into our ``UpstreamError``.

    A ``timer`` (an ``asyncio.timeout`` entered inside the block) that expired becomes an ``UpstreamTimeoutError``
    saying what was ``waited`` for; cancellation passes through untouched.
    """
    try:
        yield
    except UpstreamError:
        raise
    except Exception as exc:
        if timer is not None and timer.expired():
            raise UpstreamTimeoutError(f"Deployment '{deployment}' sent no {waited}.", deployment=deployment) from None
        raise transport_error(exc, deployment) from exc


def _request_headers() -> Mapping[str, str]:
    trace = upstream_trace()
    return _JSON if trace is None else {**_JSON, **trace}


def transport_error(exc: BaseException, deployment: str) -> UpstreamError:
    name = deployment
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, asyncio.TimeoutError | TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamTimeoutError(f"Deployment '{name}' timed out.", deployment=name)
    if isinstance(exc, aiohttp.ClientConnectorError | ConnectionRefusedError):
        return UpstreamConnectionError(f"Deployment '{name}' refused the connection.", deployment=name)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | ConnectionResetError):
        return UpstreamConnectionError(f"Deployment '{name}' dropped the connection.", deployment=name)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return UpstreamConnectionError(f"Deployment '{name}' could not be reached.", deployment=name)
    return UpstreamProtocolError(f"Deployment '{name}' failed: {type(exc).__name__}.", deployment=name)


class Transport:
    """A keep-alive aiohttp session bound to one deployment's base URL, headers and timeouts."""

    def __init__(
        self, config: DeploymentConfig, headers: Mapping[str, str], translate_error: ErrorTranslator, redact: Redact
    ) -> None:
        self.config = config
        self.name = config.name
        self.base_url = config.base_url
        self._headers = dict(headers)
        self._translate_error = translate_error
        self._redact = redact
        self._session: aiohttp.ClientSession | None = None
        t = config.timeouts
        # A whole (non-streamed) answer arrives in one piece at the end, so only the total timeout can bound it.
        self._whole_timeout = aiohttp.ClientTimeout(total=t.total, sock_connect=t.connect)
        self._stream_timeout = aiohttp.ClientTimeout(total=t.total, sock_connect=t.connect)
        self._probe_timeout = aiohttp.ClientTimeout(total=min(10.0, t.total), sock_connect=t.connect)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def post_json(self, path: str, payload: bytes) -> Any:
        """POST ``payload`` (JSON bytes) and return the parsed JSON answer."""
        return (await self.post_json_raw(path, payload))[1]

    async def post_json_raw(self, path: str, payload: bytes) -> tuple[bytes, Any]:
        """POST ``payload`` and return the answer's bytes with their parsed JSON (to pass the bytes on)."""
        with map_transport_errors(self.name):
            async with self.session.post(
                self.base_url + path,
                data=payload,
                headers=_request_headers(),
                timeout=self._whole_timeout,
                allow_redirects=False,
            ) as resp:
                body = await resp.read()
                self._raise_for_status(resp, body)
        return body, self._parse(body)

    async def get_json(self, path: str) -> Any:
        with map_transport_errors(self.name):
            async with self.session.get(
                self.base_url + path, timeout=self._probe_timeout, allow_redirects=False
            ) as resp:
                body = await resp.read()
                self._raise_for_status(resp, body)
        return self._parse(body)

    @asynccontextmanager
    async def open_stream(self, path: str, payload: bytes) -> AsyncIterator[AsyncIterator[bytes]]:
        """POST and yield the body's pieces once the headers arrived with a success status.

        Leaving the context (normally, by error or by cancellation) releases the connection; an unfinished
        body is closed, which is how a disconnected client cancels the upstream call.
        """
        first_token = self.config.timeouts.first_token
        # An upstream that never sends its headers is as stuck as one that never sends a token.
        headers_timer = asyncio.timeout(first_token)
        with map_transport_errors(self.name, headers_timer, f"first token within {first_token:g}s"):
            async with headers_timer:
                resp = await self.session.post(
                    self.base_url + path,
                    data=payload,
                    headers=_request_headers(),
                    timeout=self._stream_timeout,
                    allow_redirects=False,
                )
        try:
            if resp.status >= 400:
                with map_transport_errors(self.name):
                    body = await resp.content.read(MAX_ERROR_BODY)
                self._raise_for_status(resp, body)
            yield self._pieces(resp)
        finally:
            resp.close()

    async def _pieces(self, resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        """Raw body pieces, enforcing the time to the first token and the idle gap between pieces."""
        timeouts = self.config.timeouts
        limit, what = timeouts.first_token, "first token"
        while True:
            timer = asyncio.timeout(limit)
            with map_transport_errors(self.name, timer, f"{what} within {limit:g}s"):
                async with timer:
                    data = await resp.content.readany()
            if not data:
                return
            yield data
            limit, what = timeouts.idle, "next chunk"

    def _raise_for_status(self, resp: aiohttp.ClientResponse, body: bytes) -> None:
        if resp.status >= 400:
            retry_after = _retry_after(resp.headers)
            raise self._translate_error(resp.status, body[:MAX_ERROR_BODY], self.name, retry_after, self._redact)

    def _parse(self, body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(
                f"Deployment '{self.name}' returned a body that is not JSON.", deployment=self.name
            ) from exc

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("retry-after-ms")
    if raw:
        try:
            return max(0.0, float(raw) / 1000)
        except ValueError:
            pass
    raw = headers.get("Retry-After")
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
