"""The dashboard's HTTP side: one static page, its script and style, and the JSON it polls.

The page holds no data, so it is served to anyone; everything it shows comes from ``GET /api/dashboard``,
guarded like the other admin endpoints (the admin token, else a client key, open when neither is set). The
script sends the token as an ``Authorization`` header, never in a URL. A strict Content-Security-Policy allows
nothing but AILB's own script, style and API: no inline script, no other origin, no framing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.resources import files

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ailb.dashboard.view import CollectionCache, dashboard_view
from ailb.http.auth import require_admin, tenant_of
from ailb.http.ports import runtime_of

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_STATIC = files("ailb.dashboard") / "static"


def _asset(name: str, media_type: str) -> Callable[[], Awaitable[Response]]:
    """An endpoint serving the packaged file ``name`` (read once, here)."""
    body = (_STATIC / name).read_bytes()

    async def serve() -> Response:
        return Response(body, media_type=media_type, headers=_SECURITY_HEADERS)

    return serve


def dashboard_router() -> APIRouter:
    """``/dashboard`` (the page, its script, style and icon) and ``/api/dashboard``."""
    collections = CollectionCache()
    router = APIRouter()

    async def dashboard_data(request: Request) -> Response:
        runtime = runtime_of(request)
        require_admin(runtime, request)
        visible = None
        if not runtime.settings.admin_token and runtime.rag is not None:
            visible = runtime.keys.collections_of(tenant_of(runtime, request))
        body = orjson.dumps(await dashboard_view(runtime, collections, visible))
        return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})

    for path, name, media_type in (
        ("/dashboard", "index.html", "text/html; charset=utf-8"),
        ("/dashboard/dashboard.js", "dashboard.js", "text/javascript; charset=utf-8"),
        ("/dashboard/dashboard.css", "dashboard.css", "text/css; charset=utf-8"),
        ("/dashboard/favicon.svg", "favicon.svg", "image/svg+xml"),
    ):
        router.add_api_route(path, _asset(name, media_type), methods=["GET"], include_in_schema=False)
    router.add_api_route(
        "/api/dashboard",
        dashboard_data,
        methods=["GET"],
        summary="The dashboard's data: deployments, routes, memory and RAG, chart samples (admin token, else a "
        "client key)",
    )
    return router
