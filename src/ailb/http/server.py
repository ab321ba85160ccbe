"""The one uvicorn configuration AILB is served with (``ailb serve`` and the integration tests alike)."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from ailb.http.protocol import limited_protocol
from ailb.settings import Settings


def server_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """uvicorn on httptools with the HTTP limits of ``settings.http``; ``overrides`` replace any option."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.http_port,
        "loop": "uvloop" if sys.platform != "win32" else "asyncio",
        "http": limited_protocol(settings.http),
        "ws": "none",  # no WebSocket endpoint: an Upgrade request is answered as plain HTTP
        "lifespan": "on",
        "access_log": False,
        "log_config": None,
        "timeout_graceful_shutdown": int(settings.drain_timeout) or None,
        "server_header": False,
        # Nothing in AILB reads the client's address or scheme (no log, limit or URL uses them), so uvicorn's
        # X-Forwarded-For/-Proto middleware would only add a layer and a header scan to every request.
        "proxy_headers": False,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)
