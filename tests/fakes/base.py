"""The machinery every fake shares: a loopback aiohttp server, recording, replies, faults, streaming.

A provider fake subclasses ``FakeProvider`` and supplies its wire format: routes, auth, request validation,
the whole-answer body, the stream frames and its error shapes.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from aiohttp import web
from multidict import CIMultiDict

from tests.fakes.script import Answer, Fault, RecordedRequest, Reply, count_words, resolve_answer

Responder = Callable[[Any], Reply | str | Awaitable[Reply | str]]
Handler = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]
_POLL_SECONDS = 0.01


@dataclass(frozen=True, slots=True)
class Frame:
    """One piece of a stream; ``content`` marks pieces that carry answer content (text or tool-call data)."""

    data: bytes
    content: bool = False


class _Abandon(Exception):
    """Stop serving this request."""


class _ClientGone(_Abandon):
    pass


class _ServerStopping(_Abandon):
    pass


class FakeProvider(ABC):
    kind: ClassVar[str] = "fake"
    chat_path: ClassVar[str] = "/chat"
    api_prefix: ClassVar[str] = ""  # base_url = root URL + api_prefix
    default_models: ClassVar[tuple[str, ...]] = ()
    stream_content_type: ClassVar[str] = "text/event-stream"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        models: Sequence[str] | None = None,
        name: str | None = None,
        embedding_dimensions: int = 16,
    ) -> None:
        self.api_key = api_key
        self.models = list(models) if models is not None else list(self.default_models)
        self.name = name or self.kind
        self.embedding_dimensions = embedding_dimensions
        self.reply: Reply | str = f"Hello from {self.name}"
        self.responder: Responder | None = None
        self.latency = 0.0
        self.stream_chunk_delay = 0.0
        self.probe_fault: Fault | None = None  # applied to model listings and other token-free endpoints
        self.rewrite: Callable[[bytes], bytes] | None = None  # applied to every answer's bytes (body or frame)
        self.requests: list[RecordedRequest] = []
        self.chat_calls = 0
        self.in_flight = 0
        self.disconnects = 0
        self.port = 0
        self._faults: deque[Fault] = deque()
        self._always: Fault | None = None
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    # --- lifecycle -------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + self.api_prefix

    async def start(self) -> None:
        """Bind 127.0.0.1 on a free port (or on the port of a previous run, so a restarted fake keeps its URL)."""
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("POST", self.chat_path, self._chat)
        for method, path, handler in self.extra_routes():
            app.router.add_route(method, path, self._endpoint(handler))
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- scripting (safe to call from any thread) ----------------------------------------------------------
    def fail_next(self, *faults: Fault) -> None:
        """Queue faults; each chat request consumes one (FIFO) before the ``fail_always`` fault applies."""
        with self._lock:
            self._faults.extend(faults)

    def fail_always(self, fault: Fault) -> None:
        with self._lock:
            self._always = fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._always = None

    def error_body(self, status: int, message: str) -> bytes:
        """The provider's error body for ``status`` with ``message``: for ``Fault.status(status, body=...)``."""
        body = self.error_response(status, message).body
        assert isinstance(body, bytes)
        return body

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == self.chat_path]

    # --- provider hooks ---------------------------------------------------------------------------------------
    def extra_routes(self) -> list[tuple[str, str, Handler]]:
        return []

    def auth_error(self, request: web.Request) -> web.Response | None:
        return None

    @abstractmethod
    def error_response(self, status: int, message: str | None = None) -> web.Response:
        """An error answer with ``status`` in the provider's own error shape."""

    def validate_chat(self, request: web.Request, body: dict[str, Any]) -> web.Response | None:
        return None

    def is_stream(self, body: dict[str, Any]) -> bool:
        return bool(body.get("stream"))

    def tools_offered(self, body: dict[str, Any]) -> bool:
        return bool(body.get("tools"))

    def token_limit(self, body: dict[str, Any]) -> int | None:
        return None

    def prompt_words(self, body: dict[str, Any]) -> int:
        return count_words(body.get("messages"))

    @abstractmethod
    def whole_body(self, body: dict[str, Any], answer: Answer) -> dict[str, Any]:
        """The provider's non-streamed answer."""

    @abstractmethod
    def stream_frames(self, body: dict[str, Any], answer: Answer) -> list[Frame]:
        """The provider's streamed answer, frame by frame."""

    @abstractmethod
    def error_frame(self, message: str | None = None) -> bytes:
        """The provider's in-stream error, sent by ``Fault.error_event`` (its usual message unless ``message``)."""

    def garbage_frame(self, text: str) -> bytes:
        """A frame in the provider's stream framing whose payload is ``text``, not JSON: ``Fault.malformed``."""
        return b"data: " + text.encode() + b"\n\n"

    @staticmethod
    def received_key(request: web.Request) -> str:
        """The credential the request carried (``x-api-key``, else the Bearer token)."""
        given = request.headers.get("x-api-key", "")
        bearer = request.headers.get("Authorization", "")
        if not given and bearer.startswith("Bearer "):
            given = bearer[7:].strip()
        return given

    def quoted_key_message(self, request: web.Request) -> str:
        """What a careless upstream says when it quotes the credential back (as sent, and upper-cased)."""
        key = self.received_key(request)
        return f"Incorrect API key provided: {key} (normalized: {key.upper()}); check Authorization: Bearer {key}"

    # --- serving ----------------------------------------------------------------------------------------------
    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        with self._lock:
            self.chat_calls += 1
            fault = self._faults.popleft() if self._faults else self._always
        self.in_flight += 1
        try:
            return await self._serve_chat(request, body, fault)
        except _ClientGone:
            self.disconnects += 1
            return web.Response(status=499)
        except _ServerStopping:
            _kill(request)
            return web.Response(status=503)
        finally:
            self.in_flight -= 1

    async def _serve_chat(self, request: web.Request, body: Any, fault: Fault | None) -> web.StreamResponse:
        early = await self._early_fault(request, fault)
        if early is not None:
            return early
        denied = self.auth_error(request)
        if denied is not None:
            return denied
        if not isinstance(body, dict):
            return self.error_response(400, "The request body is not a JSON object.")
        invalid = self.validate_chat(request, body)
        if invalid is not None:
            return invalid
        answer = resolve_answer(
            await self._scripted_reply(body),
            tools_offered=self.tools_offered(body),
            token_limit=self.token_limit(body),
            prompt_words=self.prompt_words(body),
        )
        if self.is_stream(body):
            return await self._stream(request, self.stream_frames(body, answer), fault)
        if fault is not None and fault.kind == "drop_mid_stream":
            _kill(request)
            return web.Response()
        if fault is not None and fault.kind == "error_event":
            return self.error_response(500, self.quoted_key_message(request) if fault.quote_key else None)
        if fault is not None and fault.kind == "malformed":
            return web.Response(body=self._garbage(request, fault), content_type="application/json")
        if self.rewrite is not None:
            raw = self.rewrite(json.dumps(self.whole_body(body, answer)).encode())
            return web.Response(body=raw, content_type="application/json")
        return web.json_response(self.whole_body(body, answer))

    def _garbage(self, request: web.Request, fault: Fault) -> bytes:
        text = "<html>502 Bad Gateway</html>"
        return (text + " " + self.quoted_key_message(request) if fault.quote_key else text).encode()

    async def _early_fault(self, request: web.Request, fault: Fault | None) -> web.StreamResponse | None:
        """Latency, then the faults that strike before any answer: hang, drop, status."""
        await self._wait(request, self.latency)
        if fault is None:
            return None
        if fault.kind == "hang":
            await self._wait(request, fault.seconds)
        elif fault.kind == "drop":
            _kill(request)
            return web.Response()
        elif fault.kind == "status":
            return self._status_response(fault, request)
        return None

    def _status_response(self, fault: Fault, request: web.Request) -> web.Response:
        if fault.body is None:
            message = self.quoted_key_message(request) if fault.quote_key else None
            response = self.error_response(fault.http_status, message)
        elif isinstance(fault.body, bytes | str):
            response = web.Response(status=fault.http_status, body=fault.body, content_type="application/json")
        else:
            response = web.json_response(dict(fault.body), status=fault.http_status)
        response.headers.update(fault.headers or {})
        return response

    async def _scripted_reply(self, body: dict[str, Any]) -> Reply:
        scripted: Reply | str
        if self.responder is not None:
            produced = self.responder(body)
            scripted = await produced if inspect.isawaitable(produced) else produced
        else:
            scripted = self.reply
        return Reply(text=scripted) if isinstance(scripted, str) else scripted

    async def _stream(self, request: web.Request, frames: list[Frame], fault: Fault | None) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": self.stream_content_type, "Cache-Control": "no-cache"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
        except ConnectionError as exc:
            raise _ClientGone from exc
        breaks = fault is not None and fault.kind in ("drop_mid_stream", "error_event", "malformed")
        content_sent = 0
        for index, frame in enumerate(frames):
            if breaks and fault is not None and _break_here(fault, index, len(frames), frame, content_sent):
                if fault.kind == "drop_mid_stream":
                    _kill(request)
                    return response
                await self._write(request, response, self._breaking_frame(request, fault))
                break
            if index:
                await self._wait(request, self.stream_chunk_delay)
            await self._write(request, response, self.rewrite(frame.data) if self.rewrite else frame.data)
            content_sent += frame.content
        try:
            await response.write_eof()
        except ConnectionError as exc:
            raise _ClientGone from exc
        return response

    def _breaking_frame(self, request: web.Request, fault: Fault) -> bytes:
        if fault.kind == "malformed":
            return self.garbage_frame(self._garbage(request, fault).decode())
        return self.error_frame(self.quoted_key_message(request) if fault.quote_key else None)

    async def _write(self, request: web.Request, response: web.StreamResponse, data: bytes) -> None:
        _check_client(request)
        try:
            await response.write(data)
        except ConnectionError as exc:
            raise _ClientGone from exc

    async def _wait(self, request: web.Request, seconds: float) -> None:
        """Sleep, noticing a client that goes away and a server that stops."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            _check_client(request)
            if self._stopping.is_set():
                raise _ServerStopping
            left = deadline - loop.time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, _POLL_SECONDS))

    def _endpoint(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            body = await self._record(request)
            try:
                early = await self._early_fault(request, self.probe_fault)
            except _Abandon:
                _kill(request)
                return web.Response(status=499)
            if early is not None:
                return early
            denied = self.auth_error(request)
            return denied if denied is not None else await handler(request, body)

        return serve

    async def _record(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            headers=CIMultiDict(request.headers),
            json=parsed,
            query=dict(request.query),
        )
        with self._lock:
            self.requests.append(recorded)
        return parsed


def _break_here(fault: Fault, index: int, total: int, frame: Frame, content_sent: int) -> bool:
    """Right after the Nth content piece (before the first one when N is 0), or before the last frame."""
    if index == total - 1:
        return True
    return content_sent == fault.after_chunks and (frame.content or content_sent > 0)


def _check_client(request: web.Request) -> None:
    transport = request.transport
    if transport is None or transport.is_closing():
        raise _ClientGone


def _kill(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.close()
