"""``POST /v1/chat/completions``: the hot path."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from time import perf_counter
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ailb.errors import AILBError, RateLimitedError, UpstreamError
from ailb.http.errors import CLIENT_CLOSED_REQUEST, error_body, error_response
from ailb.http.parsing import ClientDisconnected, parse_json_object, read_body, validate_chat
from ailb.http.sse import EventStreamResponse, unless_disconnected
from ailb.observability.context import request_span
from ailb.observability.tracing import RequestSpan
from ailb.service import ChatStream, Context
from ailb.types import ChatCall, StreamChunk

if TYPE_CHECKING:
    from ailb.bootstrap import Gateway
    from ailb.routing.router import RouteInfo

log = logging.getLogger("ailb.http")
DONE = b"data: [DONE]\n\n"


async def chat_completions(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    metrics = gateway.metrics
    started = perf_counter()
    metrics.request_started()
    model, deployment, status, upstream = "", "", 500, 0.0
    handed_off = False
    span = request_span()
    try:
        key = gateway.keys.identify(request.headers)
        data = parse_json_object(await read_body(request, gateway.settings.max_request_bytes))
        call = validate_chat(
            data, key.tenant, request.headers.get("x-session-id"), request.headers.get("x-ailb-strategy")
        )
        model = call.model
        span.operation("chat", model, call.body)
        meter = gateway.governor.meter(key, model)
        if gateway.rate_limits.active:
            await _route_limit(gateway, model)
        if call.stream:
            stream = await unless_disconnected(request.receive, gateway.service.stream(call, meter))
            _routed(span, stream.route, call)
            stream.chunks = span.watch(stream.chunks)
            handed_off = True
            return EventStreamResponse(
                _sse(gateway, stream, model, started), route_headers(stream.route, stream.context)
            )
        result = await unless_disconnected(request.receive, gateway.service.complete(call, meter))
        status, deployment, upstream = 200, result.route.deployment, result.route.upstream_seconds
        _routed(span, result.route, call)
        span.completed(result.completion)
        return Response(
            result.completion.raw or orjson.dumps(result.completion.body),
            media_type="application/json",
            headers=route_headers(result.route, result.context),
        )
    except ClientDisconnected as exc:
        status = CLIENT_CLOSED_REQUEST
        if exc.args:
            log.info("client connection closed during POST %s (%s)", request.url.path, exc.args[0])
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    except AILBError as exc:
        status = exc.status
        if isinstance(exc, UpstreamError):
            deployment = exc.deployment
        span.failed(exc)
        return error_response(exc, gateway.redactor)
    finally:
        if not handed_off:
            metrics.request_finished(model, deployment, status, perf_counter() - started, upstream, None)


def _routed(span: RequestSpan, route: RouteInfo, call: ChatCall) -> None:
    """Tell the request's span who answered and (when content capture is on) what was sent upstream."""
    span.routed(route)
    span.prompt(call.body["messages"])


async def _route_limit(gateway: Gateway, model: str) -> None:
    """The gateway's own per-route limits (set over gRPC ``ApplyRateLimit``)."""
    try:
        await gateway.rate_limits.check(model)
    except RateLimitedError:
        gateway.metrics.rate_limited(model)
        raise


async def _sse(gateway: Gateway, stream: ChatStream, model: str, started: float) -> AsyncIterator[bytes]:
    """Write chunks as they come; a failure after the first byte ends with an error event and no [DONE]."""
    route = stream.route
    ttft: float | None = None
    status = 200  # what the response began with; a failure after that is counted with its own status
    chunks = stream.chunks
    ready: Callable[[], list[StreamChunk]] | None = getattr(chunks, "ready", None)
    try:
        async for chunk in chunks:
            # The chunks already at hand go out in one write (one per upstream read, not one per event).
            frame = chunk.frame + b"".join([c.frame for c in ready()]) if ready is not None else chunk.frame
            if frame:
                if ttft is None:
                    ttft = perf_counter() - started
                yield frame
        yield DONE
    except AILBError as exc:
        status = exc.status
        log.warning("stream from %s failed after the first chunk: %s", route.deployment, exc.log_message)
        yield b"event: error\ndata: " + error_body(exc, gateway.redactor) + b"\n\n"
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
        elapsed = perf_counter() - started
        # Time the gateway added is what the client waited for its first byte beyond the upstream's own wait.
        upstream = elapsed - (ttft - route.upstream_seconds) if ttft is not None else route.upstream_seconds
        gateway.metrics.request_finished(model, route.deployment, status, elapsed, upstream, ttft)


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
