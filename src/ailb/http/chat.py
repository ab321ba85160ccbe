"""``POST /v1/chat/completions``: the hot path."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Send

from ailb.contract import ChatCall, StreamChunk
from ailb.errors import AILBError, RateLimitedError, UpstreamError
from ailb.http.errors import CLIENT_CLOSED_REQUEST, error_body, error_response
from ailb.http.parsing import ClientDisconnected, header, parse_json_object, read_body
from ailb.http.ports import HttpRuntime, runtime_of
from ailb.http.sse import ClientWatch, EventStream, unless_disconnected
from ailb.ingress.chat.request import validate_chat
from ailb.observability.context import RequestContext, request_context
from ailb.service import ChatStream, Context

if TYPE_CHECKING:
    from ailb.routing.router import RouteInfo

log = logging.getLogger("ailb.http")
DONE = b"data: [DONE]\n\n"
JSON_CONTENT_TYPE = (b"content-type", b"application/json")


async def chat_completions(request: Request) -> Response:
    """Its metrics are recorded by the HTTP edge (``app.HotPath``) from what this notes in the request context."""
    gateway = runtime_of(request)  # the configuration this request runs on, start to end
    context = request_context()
    span = context.span
    try:
        key = gateway.keys.identify(request.headers)
        data = parse_json_object(await read_body(request, gateway.settings.max_request_bytes))
        call = validate_chat(
            data, key.tenant, header(request, b"x-session-id"), header(request, b"x-ailb-strategy")
        )
        model = context.model = call.model
        span.operation("chat", model, call.body)
        meter = gateway.governor.meter(key, model)
        if gateway.rate_limits.active:
            await _route_limit(gateway, model)
        if call.stream:
            watch = ClientWatch(request.receive, request.scope)  # one watch for the first content and the writing
            stream = await watch.guard(gateway.service.stream(call, meter))
            _routed(context, stream.route, stream.call)
            stream.chunks = span.watch(stream.chunks)
            headers = raw_route_headers(stream.route, stream.context)
            return ChatEvents(gateway, stream, context, headers, watch)
        result = await unless_disconnected(request.receive, gateway.service.complete(call, meter), request.scope)
        _routed(context, result.route, result.call)
        span.completed(result.completion)
        return JsonAnswer(
            result.completion.raw or orjson.dumps(result.completion.body),
            raw_route_headers(result.route, result.context),
        )
    except ClientDisconnected as closed:
        if closed.args:
            log.info("client connection closed during POST %s (%s)", request.url.path, closed.args[0])
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    except AILBError as exc:
        if isinstance(exc, UpstreamError):
            context.deployment = exc.deployment
        span.failed(exc)
        return error_response(exc, gateway.redactor)


def _routed(context: RequestContext, route: RouteInfo, sent: ChatCall) -> None:
    """Note who answered; tell the request's span that and (when content capture is on) what was sent upstream."""
    context.routed(route.deployment, route.upstream_seconds)
    context.span.routed(route)
    context.span.prompt(sent.messages)


async def _route_limit(gateway: HttpRuntime, model: str) -> None:
    """The gateway's own per-route limits (set over gRPC ``ApplyRateLimit``)."""
    try:
        await gateway.rate_limits.check(model)
    except RateLimitedError:
        gateway.metrics.rate_limited(model)
        raise


class ChatEvents(EventStream):
    """A chat stream's chunks written as they come; a failure after the first byte ends with an error event and no
    [DONE]. Once the upstream has said its last, the rest is written with the end, in the response's last write."""

    def __init__(
        self,
        gateway: HttpRuntime,
        stream: ChatStream,
        context: RequestContext,
        headers: list[tuple[bytes, bytes]],
        watch: ClientWatch,
    ) -> None:
        super().__init__(headers, watch)
        self.gateway = gateway
        self.stream = stream
        self.context = context

    async def _write(self, send: Send) -> bytes:
        chunks, context = self.stream.chunks, self.context
        ready: Callable[[], list[StreamChunk]] | None = getattr(chunks, "ready", None)
        at_end: Callable[[], bool] | None = getattr(chunks, "at_end", None)
        first = True
        held = b""
        try:
            async for chunk in chunks:
                # The chunks already at hand go out in one write (one per upstream read, not one per event).
                frame = chunk.frame
                more = ready() if ready is not None else None
                if more:
                    frame += b"".join([c.frame for c in more])
                if frame:
                    if first:
                        first = False
                        context.first_byte = perf_counter()
                    if at_end is not None and at_end():
                        held += frame
                        continue
                    body = held + frame if held else frame
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                    held = b""
            return held + DONE
        except AILBError as exc:
            context.failure = exc.status  # the response began with 200; the request is counted with this status
            deployment = self.stream.route.deployment
            log.warning("stream from %s failed after the first chunk: %s", deployment, exc.log_message)
            return held + b"event: error\ndata: " + error_body(exc, self.gateway.redactor) + b"\n\n"

    def _closing(self) -> Awaitable[None]:
        return self.stream.chunks.aclose()  # type: ignore[attr-defined,no-any-return]


class JsonAnswer(Response):
    """A 200 JSON answer whose headers are built as bytes at once (what ``Response(body, media_type=...,
    headers=...)`` sends, in the same order, without its per-request header encoding)."""

    def __init__(self, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        headers.append((b"content-length", str(len(body)).encode()))
        headers.append(JSON_CONTENT_TYPE)
        self.raw_headers = headers


def raw_route_headers(route: RouteInfo, context: Context) -> list[tuple[bytes, bytes]]:
    """``route_headers`` as raw ASGI headers (UTF-8: a deployment's name may be any text)."""
    headers = [
        (b"x-ailb-provider", route.provider.encode()),
        (b"x-ailb-deployment", route.deployment.encode()),
        (b"x-ailb-attempts", str(route.attempts).encode()),
        (b"x-ailb-strategy", route.strategy.encode()),
    ]
    if context.memory_turns is not None or context.rag_sources:
        headers = [(k.encode(), v.encode()) for k, v in route_headers(route, context).items()]
    return headers


def route_headers(route: RouteInfo, context: Context) -> dict[str, str]:
    headers = {
        "x-ailb-provider": route.provider,
        "x-ailb-deployment": route.deployment,
        "x-ailb-attempts": str(route.attempts),
        "x-ailb-strategy": route.strategy,
    }
    if context.memory_turns is not None:
        headers["x-ailb-memory-turns"] = str(context.memory_turns)
    if context.rag_sources:
        headers["x-ailb-rag-sources"] = ",".join(context.rag_sources)
    return headers
