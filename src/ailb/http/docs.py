"""``/docs`` (Swagger UI) and ``/redoc`` served entirely by AILB: their scripts and styles come from the
installed ``fastapi-offline`` package, so the API description works where no CDN can be reached."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

ASSETS_PATH = "/docs/assets"
_ASSETS = Path(fastapi_offline.__file__).parent / "static"
_FILES = {  # name -> media type; nothing else is served from the folder
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
# Swagger UI would otherwise ask an online validator about the description.
_SWAGGER_PARAMETERS = {"validatorUrl": None}


def add_docs_routes(app: FastAPI) -> None:
    """Call with ``FastAPI(docs_url=None, redoc_url=None)``: these replace FastAPI's CDN-based pages."""
    title = app.title

    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{title} - API docs",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            swagger_ui_parameters=_SWAGGER_PARAMETERS,
        )

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{title} - API reference",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )

    app.add_api_route("/docs", swagger, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
    app.add_api_route(ASSETS_PATH + "/{name}", asset, methods=["GET"], include_in_schema=False)


async def asset(name: str) -> Response:
    media_type = _FILES.get(name)
    if media_type is None:
        return Response(status_code=404)
    return FileResponse(_ASSETS / name, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})
