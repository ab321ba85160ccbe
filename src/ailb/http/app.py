"""The FastAPI application: routes, error rendering and the OpenAPI description."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from time import perf_counter
from typing import TYPE_CHECKING, Any

import msgspec
import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ailb import __version__
from ailb.contract import ModelInfo
from ailb.dashboard.routes import dashboard_router
from ailb.errors import ModelNotFoundError
from ailb.governance.usage import KeyUsage
from ailb.http import memory_routes, rag_routes, surfaces
from ailb.http.auth import check_metrics_token, client_of, require_admin
from ailb.http.chat import chat_completions
from ailb.http.docs import add_docs_routes
from ailb.http.errors import install_error_handlers, internal_error
from ailb.http.openapi import COMPONENTS as SURFACE_COMPONENTS
from ailb.http.openapi import add_surface_routes
from ailb.http.ports import HttpRuntime, RuntimeSource, runtime_of
from ailb.ingress.chat.schema import ChatCompletion, ChatCompletionRequest
from ailb.ingress.openai_schema import ErrorResponse, ModelCard, ModelList
from ailb.observability.context import REQUEST_ID_HEADER, RequestContext, enter_request, leave_request, request_id_from
from ailb.observability.tracing import Tracing

if TYPE_CHECKING:
    from ailb.observability.metrics import Metrics

_REF = "#/components/schemas/{name}"
_SCHEMAS, _COMPONENTS = msgspec.json.schema_components(
    [ChatCompletionRequest, ChatCompletion, ModelList, ModelCard, ErrorResponse, KeyUsage], ref_template=_REF
)
_REQUEST_SCHEMA, _COMPLETION_SCHEMA, _MODELS_SCHEMA, _MODEL_SCHEMA, _ERROR_SCHEMA, _USAGE_SCHEMA = _SCHEMAS


def _json(status_schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": status_schema}}}


_ERRORS = {str(code): {"description": text, **_json(_ERROR_SCHEMA)} for code, text in (
    (400, "Invalid request"), (401, "Missing or wrong client key"), (404, "Unknown model"),
    (413, "Body too large"), (415, "Body is not JSON"), (429, "Rate limited"),
    (502, "Upstream failed"), (503, "No deployment available"), (504, "Upstream timed out"),
)}  # fmt: skip


CHAT_PATH = "/v1/chat/completions"
Handler = Callable[[Request], Awaitable[Response]]
# The API surfaces, each a POST answered on the hot path (and declared in the FastAPI app for the OpenAPI schema),
# with the ``route`` label of its request metrics.
HOT_ROUTES: dict[str, tuple[Handler, str]] = {
    CHAT_PATH: (chat_completions, "chat"),
    "/v1/responses": (surfaces.create_response, surfaces.RESPONSES.route),
    "/v1/messages": (surfaces.create_message, surfaces.MESSAGES.route),
    "/v1/messages/count_tokens": (surfaces.count_message_tokens, surfaces.COUNT_TOKENS.route),
    "/v1/completions": (surfaces.create_completion, surfaces.COMPLETIONS.route),
    "/v1/embeddings": (surfaces.create_embeddings, surfaces.EMBEDDINGS.route),
}


TRACED_PREFIX = "/v1/"  # the API; health checks, metrics scrapes and dashboard polls are not traced


class HotPath:
    """Pure ASGI, the HTTP edge. Every request gets its id (the client's ``x-request-id`` when safe, else a new
    one), set in its context for the logs and answered in its ``x-request-id`` header; with tracing on, an API
    request gets its server span here, which the route names and fills in.

    The API surfaces' ``POST`` routes (``HOT_ROUTES``: chat completions, Responses, Messages, completions,
    embeddings) go straight to their handlers, past FastAPI's per-request layers (dependency solving, exit
    stacks, the middleware stack), which cost more CPU than the whole gateway logic. Every other request, and the
    lifespan, is the FastAPI ``app``'s; the routes stay declared there for the OpenAPI description.

    The API surfaces' request metrics are recorded here, once the response is sent, from what the route noted in
    the request context (model, deployment, upstream time, a stream's first byte and late failure)."""

    def __init__(self, app: FastAPI, tracing: Tracing, metrics: Metrics) -> None:
        self.app = app
        self._tracing = tracing if tracing.enabled else None
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = RequestContext(request_id_from(scope["headers"]))
        token = enter_request(context)
        try:
            if self._tracing is None or not scope["path"].startswith(TRACED_PREFIX):
                await self._serve(scope, receive, send, context)
                return
            context.span = span = self._tracing.start_request(
                scope["method"], scope["path"], scope["headers"], context.request_id
            )
            status = 500
            try:
                status = await self._serve(scope, receive, send, context)
            finally:
                span.finish(status, scope["path"] if _hot_route(scope) else getattr(scope.get("route"), "path", None))
        finally:
            leave_request(token)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, context: RequestContext) -> int:
        """Answer the request; returns the response status."""
        header = (REQUEST_ID_HEADER, context.request_id.encode("ascii"))
        hot = _hot_route(scope)
        if hot is not None:
            return await self._serve_hot(scope, receive, send, context, hot, header)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_id)
        return status

    async def _serve_hot(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        context: RequestContext,
        hot: tuple[Handler, str],
        header: tuple[bytes, bytes],
    ) -> int:
        """Answer an API surface's request and record its metrics."""
        handler, route = hot
        metrics = self._metrics
        metrics.request_started()
        started = perf_counter()
        status = 500
        try:
            scope["app"] = self.app
            request = Request(scope, receive, send)
            try:
                response = await handler(request)
            except Exception as exc:
                response = internal_error(request, exc)
            response.raw_headers.append(header)
            await response(scope, receive, send)
            status = response.status_code
            return status
        finally:
            elapsed = perf_counter() - started
            first_byte = context.first_byte
            ttft = None if first_byte is None else first_byte - started
            # The time AILB added is what the client waited for its first byte beyond the upstream's own wait.
            upstream = context.upstream if ttft is None else elapsed - (ttft - context.upstream)
            status = context.failure or status
            metrics.request_finished(context.model, context.deployment, status, elapsed, upstream, ttft, route)


def _hot_route(scope: Scope) -> tuple[Handler, str] | None:
    """The handler of an API surface's ``POST`` route, answered on the hot path, and its metrics label."""
    return HOT_ROUTES.get(scope["path"]) if scope["method"] == "POST" else None


def create_app(source: RuntimeSource) -> HotPath:
    """The ASGI application: the FastAPI app (``.app``) behind the HTTP edge and the chat hot path. ``source``
    is started and closed by the app's lifespan; every request reads its current runtime."""
    return HotPath(_fastapi_app(source), source.runtime.tracing, source.runtime.metrics)


def _fastapi_app(source: RuntimeSource) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await source.start()
        try:
            yield
        finally:
            await source.aclose()

    app = FastAPI(
        title="AILB",
        version=__version__,
        description="The AI Load Balancer: one OpenAI-compatible endpoint in front of many LLM backends.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,  # a redirect would echo the client's Host header back: 404 instead
    )
    add_docs_routes(app)
    app.state.runtimes = source
    install_error_handlers(app, source.runtime.redactor)
    _add_api_routes(app)
    add_surface_routes(app, _ERRORS)
    _add_operations_routes(app)
    app.include_router(memory_routes.router)
    app.include_router(rag_routes.router)
    app.include_router(dashboard_router())
    _add_components(app)
    return app


_CHAT_OPENAPI = {
    "requestBody": {"required": True, **_json(_REQUEST_SCHEMA)},
    "responses": {
        "200": {
            "description": "A chat completion, or with `stream: true` a `text/event-stream` of "
            "`chat.completion.chunk` events ending with `data: [DONE]`",
            "content": {
                "application/json": {"schema": _COMPLETION_SCHEMA},
                "text/event-stream": {"schema": {"type": "string"}},
            },
        },
        **_ERRORS,
    },
}


def _add_api_routes(app: FastAPI) -> None:
    """Chat completions (answered on the hot path, declared here for the OpenAPI description), models, usage."""
    app.add_api_route(
        CHAT_PATH,
        chat_completions,
        methods=["POST"],
        summary="Create a chat completion (OpenAI-compatible; `stream: true` answers with server-sent events)",
        include_in_schema=True,
        openapi_extra=_CHAT_OPENAPI,
    )
    app.add_api_route(
        "/v1/models",
        list_models,
        methods=["GET"],
        summary="List the models and aliases served",
        openapi_extra={"responses": {"200": {"description": "Model list", **_json(_MODELS_SCHEMA)}}},
    )
    app.add_api_route(
        "/v1/models/{model_id:path}",
        retrieve_model,
        methods=["GET"],
        summary="One model or alias",
        openapi_extra={"responses": {"200": {"description": "Model", **_json(_MODEL_SCHEMA)}, "404": _ERRORS["404"]}},
    )
    app.add_api_route(
        "/v1/usage",
        key_usage,
        methods=["GET"],
        summary="The calling key's budget period, spend, requests, tokens and limits",
        openapi_extra={"responses": {"200": {"description": "Usage", **_json(_USAGE_SCHEMA)}, "401": _ERRORS["401"]}},
    )


def _add_operations_routes(app: FastAPI) -> None:
    """Health, routing statistics and metrics."""
    app.add_api_route("/healthz", healthz, methods=["GET"], summary="Gateway, provider, memory and RAG health")
    stats_summary = "Live routing statistics (admin token, else a client key)"
    app.add_api_route("/api/routing/stats", routing_stats, methods=["GET"], summary=stats_summary)
    app.add_api_route("/metrics", metrics, methods=["GET"], summary="Prometheus metrics (METRICS_TOKEN when set)")


async def list_models(request: Request) -> Response:
    """The models and aliases the calling key may use."""
    runtime = runtime_of(request)
    key = client_of(runtime, request)
    data = [
        {"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by}
        for m in _served_models(runtime)
        if key.may_use(m.id)
    ]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")


async def retrieve_model(request: Request, model_id: str) -> Response:
    runtime = runtime_of(request)
    if not client_of(runtime, request).may_use(model_id):
        raise ModelNotFoundError(model_id)
    for model in _served_models(runtime):
        if model.id == model_id:
            card = {"id": model.id, "object": "model", "created": model.created, "owned_by": model.owned_by}
            return Response(orjson.dumps(card), media_type="application/json")
    raise ModelNotFoundError(model_id)


def _served_models(runtime: HttpRuntime) -> list[ModelInfo]:
    """Chat models and aliases, embedding models, and the packaged embedding model when it is offered."""
    return [*runtime.router.list_models(), *runtime.embeddings.models()]


async def key_usage(request: Request) -> Response:
    runtime = runtime_of(request)
    usage = await runtime.governor.usage(client_of(runtime, request))
    return Response(msgspec.json.encode(usage), media_type="application/json")


async def healthz(request: Request) -> Response:
    body = runtime_of(request).health()
    status = 503 if body["status"] == "unavailable" else 200
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def routing_stats(request: Request) -> Response:
    runtime = runtime_of(request)
    require_admin(runtime, request)
    return Response(orjson.dumps(runtime.router.stats()), media_type="application/json")


async def metrics(request: Request) -> Response:
    runtime = runtime_of(request)
    check_metrics_token(runtime.settings.metrics_token, request.headers)
    body, content_type = runtime.metrics.render()
    return Response(body, media_type=content_type)


def _add_components(app: FastAPI) -> None:
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(_COMPONENTS)
            schema["components"]["schemas"].update(SURFACE_COMPONENTS)
            schema["components"]["schemas"].update(memory_routes.COMPONENTS)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
