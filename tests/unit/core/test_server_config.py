from __future__ import annotations

from typing import Any

from ailb.http.server import server_config
from ailb.settings import Settings


async def app(scope: Any, receive: Any, send: Any) -> None:
    """An ASGI app that is never called: only how uvicorn would serve it is looked at."""


def test_uvicorn_serves_the_app_itself_without_a_forwarded_headers_layer() -> None:
    config = server_config(app, Settings(enable_grpc=False))
    config.load()
    assert config.loaded_app is app  # no ProxyHeadersMiddleware (nor any other wrapper) around every request
    assert config.http_protocol_class is not None and not config.access_log and not config.server_header
