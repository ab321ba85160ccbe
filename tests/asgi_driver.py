"""Drive an ASGI app in process with one JSON request, as uvicorn would, and keep every message it sends; the app
``ailb serve`` runs, started in process in front of the wire-level OpenAI fake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson

from ailb.bootstrap import Gateway
from ailb.http.app import HotPath, create_app
from ailb.settings import load_settings
from tests.fakes.openai_fake import OpenAIFake


@asynccontextmanager
async def gateway_in_front_of(
    fake: OpenAIFake, config_path: str | None = None, **more_env: str
) -> AsyncIterator[tuple[Gateway, HotPath]]:
    """A started gateway serving the fake's ``gpt-4o`` (memory and gRPC off) and its ASGI app; ``config_path``: a
    config file adding to that (e.g. client keys), ``more_env``: more settings."""
    env = {"OPENAI_API_KEY": "sk-upstream-1", "OPENAI_BASE_URL": fake.base_url, "OPENAI_MODELS": "gpt-4o",
           "ENABLE_MEMORY": "false", "ENABLE_GRPC": "false", "HEALTH_CHECK_INTERVAL": "0", **more_env}  # fmt: skip
    gateway = Gateway(load_settings(env, config_path), env)
    app = create_app(gateway)
    await gateway.start(grpc=False)
    try:
        yield gateway, app
    finally:
        await gateway.aclose()


async def sent_messages(
    app: Any, path: str, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> list[dict[str, Any]]:
    """Every message the app sends for one POST of ``body`` to ``path`` (start, then body messages: each body
    message is one socket write in uvicorn); the client stays until the whole answer is in. ``headers``: more
    request headers."""
    incoming = [{"type": "http.request", "body": orjson.dumps(body), "more_body": False}]
    sent: list[dict[str, Any]] = []
    answered = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop()
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    scope = {
        "type": "http", "method": "POST", "path": path,
        "headers": [(b"content-type", b"application/json"), *(headers or ())],
        "query_string": b"", "http_version": "1.1", "scheme": "http", "root_path": "",
        "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 50000),
    }  # fmt: skip
    await app(scope, receive, send)
    return sent
