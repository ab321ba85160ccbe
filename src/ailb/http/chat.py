"""``POST /v1/chat/completions``: the hot path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ailb.errors import AILBError, RateLimitedError, UpstreamError
from ailb.http.errors import CLIENT_CLOSED_REQUEST, error_body, error_response
from ailb.http.parsing import ClientDisconnected, parse_json_object, read_body, validate_chat
from ailb.http.ports import HttpRuntime, runtime_of
from ailb.http.sse import EventStreamResponse, wait_for_disconnect
from ailb.observability.context import RequestContext, request_context
from ailb.service import ChatStream, Context
from ailb.types import ChatCall

if TYPE_CHECKING:
    from ailb.routing.router import RouteInfo

log = logging.getLogger("ailb.http")
DONE = b"data: [DONE]\n\n"
T = TypeVar("T")


async def chat_completions(request: Request) -> Response:
    """Its metrics are recorded by the HTTP edge (``app.HotPath``) from what this notes in the request context."""
    gateway = runtime_of(request)  # the configuration this request runs on, start to end
    context = request_context()
    span = context.span
    try:
        key = gateway.keys.identify(request.headers)
        data = parse_json_object(await read_body(request, gateway.settings.max_request_bytes))
        call = validate_chat(
            data, key.tenant, request.headers.get("x-session-id"), request.headers.get("x-ailb-strategy")
        )
        model = context.model = call.model
        span.operation("chat", model, call.body)
        meter = gateway.governor.meter(key, model)
        if gateway.rate_limits.active:
            await _route_limit(gateway, model)
        if call.stream:
            stream = await _unless_disconnected(request, gateway.service.stream(call, meter))
            _routed(context, stream.route, call)
            stream.chunks = span.watch(stream.chunks)
            return EventStreamResponse(_sse(gateway, stream, context), route_headers(stream.route, stream.context))
        result = await _unless_disconnected(request, gateway.service.complete(call, meter))
        _routed(context, result.route, call)
        span.completed(result.completion)
        return Response(
            result.completion.raw or orjson.dumps(result.completion.body),
            media_type="application/json",
            headers=route_headers(result.route, result.context),
        )
    except ClientDisconnected as exc:
        if exc.args:
            log.info("client connection closed during POST %s (%s)", request.url.path, exc.args[0])
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    except AILBError as exc:
        if isinstance(exc, UpstreamError):
            context.deployment = exc.deployment
        span.failed(exc)
        return error_response(exc, gateway.redactor)


def _routed(context: RequestContext, route: RouteInfo, call: ChatCall) -> None:
    """Note who answered; tell the request's span that and (when content capture is on) what was sent upstream."""
    context.routed(route.deployment, route.upstream_seconds)
    context.span.routed(route)
    context.span.prompt(call.body["messages"])


async def _route_limit(gateway: HttpRuntime, model: str) -> None:
    """The gateway's own per-route limits (set over gRPC ``ApplyRateLimit``)."""
    try:
        await gateway.rate_limits.check(model)
    except RateLimitedError:
        gateway.metrics.rate_limited(model)
        raise


async def _unless_disconnected(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` but cancel it (and so the upstream call) as soon as the client disconnects."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_for_disconnect(request.receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
    if not task.cancelled() and task.done():
        return task.result()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise ClientDisconnected


async def _sse(gateway: HttpRuntime, stream: ChatStream, context: RequestContext) -> AsyncIterator[bytes]:
    """Write chunks as they come; a failure after the first byte ends with an error event and no [DONE]."""
    first = True
    chunks = stream.chunks
    try:
        async for chunk in chunks:
            if chunk.frame:
                if first:
                    first = False
                    context.first_byte = perf_counter()
                yield chunk.frame
        yield DONE
    except AILBError as exc:
        context.failure = exc.status  # the response began with 200; the request is counted with this status
        log.warning("stream from %s failed after the first chunk: %s", stream.route.deployment, exc.log_message)
        yield b"event: error\ndata: " + error_body(exc, gateway.redactor) + b"\n\n"
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


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
