"""AILB's ASGI app built from the environment, for serving it under another ASGI server than ``ailb serve``'s uvicorn.

``granian --interface asgi --factory bench.asgi_app:create``
"""

from __future__ import annotations

from typing import Any

from ailb.bootstrap import Gateway
from ailb.http.app import create_app
from ailb.observability.logging import configure_logging
from ailb.settings import load_settings


def create() -> Any:
    settings = load_settings()
    configure_logging(settings.log_level, secrets=[d.api_key for d in settings.deployments])
    return create_app(Gateway(settings))
