"""The one seam to aiohttp: a pooled client per deployment and the mapping of its failures to ours.

Adapters call ``post_json`` for whole answers and ``open_stream`` + ``sse_events`` / ``ndjson_lines`` for
streams. Every aiohttp or socket failure leaves here as an ``UpstreamError``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from time import time
from typing import Any

import aiohttp
import orjson

from ailb.errors import (
    UpstreamConnectionError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from ailb.settings import DeploymentConfig

ErrorTranslator = Callable[[int, bytes, str, float | None], UpstreamError]
MAX_ERROR_BODY = 64 * 1024
MAX_STREAM_LINE = 16 * 1024 * 1024
_ORGANIZATION = re.compile(r"\borg-[A-Za-z0-9]+")  # the gateway's upstream account is nobody else's business


class Transport:
    """A keep-alive aiohttp session bound to one deployment's base URL, headers and timeouts."""

    def __init__(self, config: DeploymentConfig, headers: Mapping[str, str], translate_error: ErrorTranslator) -> None:
        self.config = config
        self.base_url = config.base_url
        self._headers = dict(headers)
        self._translate_error = translate_error
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
        try:
            async with self.session.post(
                self.base_url + path, data=payload, headers=_JSON, timeout=self._whole_timeout, allow_redirects=False
            ) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    raise self._error(resp, body)
        except UpstreamError:
            raise
        except Exception as exc:
            raise self.translate_exception(exc) from exc
        try:
            return body, orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(
                f"Deployment '{self.config.name}' returned a body that is not JSON.", deployment=self.config.name
            ) from exc

    async def get_json(self, path: str) -> Any:
        try:
            async with self.session.get(
                self.base_url + path, timeout=self._probe_timeout, allow_redirects=False
            ) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    raise self._error(resp, body)
                return orjson.loads(body)
        except UpstreamError:
            raise
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(
                f"Deployment '{self.config.name}' returned a body that is not JSON.", deployment=self.config.name
            ) from exc
        except Exception as exc:
            raise self.translate_exception(exc) from exc

    @asynccontextmanager
    async def open_stream(self, path: str, payload: bytes) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST and yield the response once its headers arrived with a success status.

        Leaving the context (normally, by error or by cancellation) releases the connection; an unfinished
        body is closed, which is how a disconnected client cancels the upstream call.
        """
        first_token = self.config.timeouts.first_token
        # An upstream that never sends its headers is as stuck as one that never sends a token.
        headers_timer = asyncio.timeout(first_token)
        try:
            async with headers_timer:
                resp = await self.session.post(
                    self.base_url + path,
                    data=payload,
                    headers=_JSON,
                    timeout=self._stream_timeout,
                    allow_redirects=False,
                )
        except TimeoutError as exc:
            if not headers_timer.expired():
                raise self.translate_exception(exc) from exc
            raise UpstreamTimeoutError(
                f"Deployment '{self.config.name}' sent no first token within {first_token:g}s.",
                deployment=self.config.name,
            ) from None
        except Exception as exc:
            raise self.translate_exception(exc) from exc
        try:
            if resp.status >= 400:
                try:
                    body = await resp.content.read(MAX_ERROR_BODY)
                except Exception as exc:
                    raise self.translate_exception(exc) from exc
                raise self._error(resp, body)
            yield resp
        finally:
            resp.close()

    async def read_chunks(self, resp: aiohttp.ClientResponse, first: bool) -> AsyncIterator[bytes]:
        """Raw body pieces, enforcing the time-to-first-token and the idle gap between pieces."""
        timeouts = self.config.timeouts
        limit = timeouts.first_token if first else timeouts.idle
        content = resp.content
        while True:
            try:
                async with asyncio.timeout(limit):
                    data = await content.readany()
            except TimeoutError:
                what = "first token" if limit == timeouts.first_token and first else "next chunk"
                raise UpstreamTimeoutError(
                    f"Deployment '{self.config.name}' sent no {what} within {limit:g}s.",
                    deployment=self.config.name,
                ) from None
            except Exception as exc:
                raise self.translate_exception(exc) from exc
            if not data:
                return
            yield data
            limit = timeouts.idle

    def translate_exception(self, exc: BaseException) -> UpstreamError:
        name = self.config.name
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

    def _error(self, resp: aiohttp.ClientResponse, body: bytes) -> UpstreamError:
        error = self._translate_error(resp.status, body[:MAX_ERROR_BODY], self.config.name, _retry_after(resp))
        if self.config.api_key and self.config.api_key in error.message:
            error.message = error.message.replace(self.config.api_key, "****")
            error.args = (error.message,)
        return error

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


_JSON = {"Content-Type": "application/json"}


async def sse_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, bytes]]:
    """Split a server-sent-event byte stream into ``(event, data)`` pairs (``event`` is "" when unnamed)."""
    buffer = b""
    event = ""
    data: list[bytes] = []
    async for piece in chunks:
        buffer += piece
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = buffer[start:end].rstrip(b"\r")
            start = end + 1
            if not line:
                if data:
                    yield event, b"\n".join(data)
                event, data = "", []
                continue
            if line.startswith(b":"):
                continue
            fname, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if fname == b"data":
                data.append(value)
            elif fname == b"event":
                event = value.decode("utf-8", "replace")
        buffer = buffer[start:]
        if len(buffer) > MAX_STREAM_LINE:
            raise UpstreamProtocolError("An upstream stream line exceeded the size limit.")
    if data:
        yield event, b"\n".join(data)


async def ndjson_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Split a newline-delimited JSON stream into non-empty lines."""
    buffer = b""
    async for piece in chunks:
        buffer += piece
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
        if len(buffer) > MAX_STREAM_LINE:
            raise UpstreamProtocolError("An upstream stream line exceeded the size limit.")
    if buffer.strip():
        yield buffer


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


def status_message(status: int, message: str, deployment: str) -> str:
    """What a client may read of an upstream error answer: never credentials or the upstream account."""
    text = _ORGANIZATION.sub("org-****", message) or f"HTTP {status}"
    if status in (401, 403):
        return f"Deployment '{deployment}' rejected the gateway's credentials (HTTP {status})."
    if status >= 500:
        return f"Deployment '{deployment}' failed with HTTP {status}: {text}"
    return text


def status_error(status: int, body: bytes, deployment: str, retry_after: float | None) -> UpstreamError:
    message, err_type, code, param = error_message(body)
    return UpstreamStatusError(
        status_message(status, message, deployment),
        upstream_status=status,
        deployment=deployment,
        retry_after=retry_after,
        param=param,
        code=code,
        error_type=err_type,
    )


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    raw = resp.headers.get("retry-after-ms")
    if raw:
        try:
            return max(0.0, float(raw) / 1000)
        except ValueError:
            pass
    raw = resp.headers.get("Retry-After")
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
