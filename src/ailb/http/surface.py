"""What every API surface's route does the same way, with the surface's own error shape.

``serve`` runs one request of a surface: notes what its metrics need in the request context (the HTTP edge
records them, labelled by the surface's ``route``), identifies the client key, reads and parses the body once
(size limit enforced while reading), and renders any ``AILBError`` in the surface's shape. The handler it calls
gets an ``Exchange``: admission (the key's model scope, its meter, the gateway's route limits), running work
that a client disconnect cancels, and the answer — JSON, or events. With tracing on, the request's span learns
the operation, who answered and the outcome, as on chat.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from ailb.errors import AILBError, InvalidRequestError, RateLimitedError, UpstreamError
from ailb.http.chat import route_headers
from ailb.http.errors import CLIENT_CLOSED_REQUEST
from ailb.http.parsing import ClientDisconnected, parse_json_object, read_body
from ailb.http.ports import HttpRuntime, runtime_of
from ailb.http.sse import EventStreamResponse, unless_disconnected
from ailb.observability.context import RequestContext, request_context
from ailb.redaction import Redactor
from ailb.service import Context

if TYPE_CHECKING:
    from ailb.governance.meter import Meter
    from ailb.routing.router import RouteInfo
    from ailb.tenancy import ClientKey

log = logging.getLogger("ailb.http")
INTERNAL_ERROR = AILBError("The gateway hit an internal error. It has been logged.", code="internal_error")
T = TypeVar("T")
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Surface:
    """One API surface at the HTTP edge: its metrics label, its error answer, and the names its API gives the
    canonical request's fields (``max_completion_tokens`` is ``max_tokens`` to a Messages client), so an error
    about one names the field the client wrote."""

    route: str
    render_error: Callable[[AILBError, Redactor], Response]
    params: Mapping[str, str] = field(default_factory=dict)

    def in_its_words(self, exc: AILBError) -> AILBError:
        name = self.params.get(exc.param or "")
        if name is None or not isinstance(exc, InvalidRequestError):
            return exc
        message = exc.message.replace(str(exc.param), name)
        return type(exc)(message, detail=exc.detail, param=name, code=exc.code, headers=dict(exc.headers))


class Exchange:
    """One request of a surface, as its handler sees it."""

    def __init__(self, request: Request, surface: Surface, gateway: HttpRuntime, context: RequestContext) -> None:
        self.request = request
        self.surface = surface
        self.gateway = gateway
        self.context = context  # what the request's metrics need is noted here
        self.key: ClientKey = gateway.keys.identify(request.headers)
        self.span = context.span

    @property
    def headers(self) -> Any:
        return self.request.headers

    @property
    def model(self) -> str:
        return self.context.model

    @model.setter
    def model(self, model: str) -> None:
        self.context.model = model

    async def body(self) -> dict[str, Any]:
        return parse_json_object(await read_body(self.request, self.gateway.settings.max_request_bytes))

    async def admit(self, model: str, operation: str, body: Mapping[str, Any]) -> Meter | None:
        """The key may use ``model`` (else 404); the gateway's route limits allow it (else 429); the key's meter.
        ``operation`` (``chat``, ``text_completion``, ``embeddings``) and the canonical ``body`` name the span."""
        self.context.model = model
        self.span.operation(operation, model, body)
        meter = self.gateway.governor.meter(self.key, model)
        limits = self.gateway.rate_limits
        if limits.active:
            try:
                await limits.check(model)
            except RateLimitedError:
                self.gateway.metrics.rate_limited(model)
                raise
        return meter

    async def unless_disconnected(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` but cancel it (and so the upstream call) as soon as the client disconnects."""
        return await unless_disconnected(self.request.receive, work, self.request.scope)

    def routed(self, route: RouteInfo, messages: Any = None) -> None:
        """Tell the span who answered and (when content capture is on) the messages sent upstream."""
        self.span.routed(route)
        if messages is not None:
            self.span.prompt(messages)

    def json(self, payload: bytes, route: RouteInfo, context: Context | None = None) -> Response:
        self.context.routed(route.deployment, route.upstream_seconds)
        return Response(payload, media_type=JSON, headers=route_headers(route, context or Context()))

    def events(self, frames: AsyncIterator[bytes], route: RouteInfo, context: Context | None = None) -> Response:
        """Stream ``frames``; a surface's frames end with its own error event and then raise the failure."""
        self.context.routed(route.deployment, route.upstream_seconds)
        return EventStreamResponse(self._noted(frames, route), route_headers(route, context or Context()))

    async def _noted(self, frames: AsyncIterator[bytes], route: RouteInfo) -> AsyncIterator[bytes]:
        """``frames``, noting when the first one went out and the status of a failure after it."""
        context = self.context
        first = True
        try:
            async for frame in frames:
                if first:
                    first = False
                    context.first_byte = perf_counter()
                yield frame
        except AILBError as exc:
            context.failure = exc.status
            log.warning("stream from %s failed after the first chunk: %s", route.deployment, exc.log_message)
        finally:
            await frames.aclose()  # type: ignore[attr-defined]


Handler = Callable[[Exchange], Awaitable[Response]]


async def serve(request: Request, surface: Surface, handler: Handler) -> Response:
    """Its metrics are recorded by the HTTP edge (``app.HotPath``) from what the exchange notes in the request
    context, labelled with the surface's ``route``."""
    gateway = runtime_of(request)  # the configuration this request runs on, start to end
    context = request_context()
    try:
        return await handler(Exchange(request, surface, gateway, context))
    except ClientDisconnected as exc:
        if exc.args:
            log.info("client connection closed during POST %s (%s)", request.url.path, exc.args[0])
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    except AILBError as exc:
        if isinstance(exc, UpstreamError) and not context.deployment:
            context.deployment = exc.deployment
        context.span.failed(exc)
        if exc.status >= 500:
            log.warning("POST %s answered %d: %s", request.url.path, exc.status, exc.log_message)
        return surface.render_error(surface.in_its_words(exc), gateway.redactor)
    except Exception as exc:  # a bug: the detail goes to the log, the client gets a 500 in its API's shape
        log.error("unhandled error on POST %s", request.url.path, exc_info=exc)
        return surface.render_error(INTERNAL_ERROR, gateway.redactor)
