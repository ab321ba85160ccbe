"""The demo's upstream: a small OpenAI-compatible server on a loopback port of the gateway's own event loop.

The ``demo`` deployment is an ordinary ``openai`` deployment pointed at it, so every demo request goes through
the real provider adapter, transport, routing, streaming, memory and RAG, exactly as a real one would.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import time
import uuid
from typing import Any

import orjson
import uvicorn
from starlette.types import Receive, Scope, Send

from ailb.demo.echo import answer

DEMO_MODEL = "demo"
_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


class EchoUpstream:
    """Binds its loopback port at once (so the gateway's configuration can name it); serves after ``start``.

    A raw ASGI app under uvicorn's server, started and stopped on the gateway's loop without its signal
    handling (the gateway owns the process's signals)."""

    def __init__(self, chunk_delay: float = 0.03) -> None:
        self.chunk_delay = chunk_delay
        self.api_key = "sk-ailb-demo-" + secrets.token_hex(12)  # only this gateway may use it
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(self, lifespan="off", log_config=None, access_log=False, server_header=False)
        self._server = uvicorn.Server(config)
        self._started = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        config = self._server.config
        config.load()
        # What ``Server.serve`` does before ``startup``, without its signal handlers.
        self._server.lifespan = config.lifespan_class(config)
        await self._server.startup(sockets=[self._socket])
        self._started = True

    async def aclose(self) -> None:
        if self._started:
            self._started = False
            await self._server.shutdown(sockets=[self._socket])
        self._socket.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        route = (scope["method"], scope["path"])
        if route == ("GET", "/v1/models"):
            card = {"id": DEMO_MODEL, "object": "model", "created": 0, "owned_by": "ailb-demo"}
            await _reply(send, 200, {"object": "list", "data": [card]})
        elif route == ("POST", "/v1/chat/completions"):
            await self._chat(scope, receive, send)
        else:
            await _reply(send, 404, _error("Not found."))

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        if dict(scope["headers"]).get(b"authorization") != f"Bearer {self.api_key}".encode():
            await _reply(send, 401, _error("Incorrect API key."))
            return
        try:
            body = orjson.loads(await _read(receive))
            messages = body["messages"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await _reply(send, 400, _error("Invalid request."))
            return
        text = answer(messages)
        usage = _usage(messages, text)
        if not body.get("stream"):
            await _reply(send, 200, _completion(text, usage))
            return
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        await self._stream(send, text, usage, with_usage)

    async def _stream(self, send: Send, text: str, usage: dict[str, int], with_usage: bool) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": _SSE})
        base = {"id": f"chatcmpl-demo-{uuid.uuid4().hex[:12]}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": DEMO_MODEL}  # fmt: skip
        deltas = [{"role": "assistant", "content": ""}] + [{"content": piece} for piece in re.findall(r"\S+\s*", text)]
        for delta in deltas:
            await _event(send, {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
            await asyncio.sleep(self.chunk_delay)
        await _event(send, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if with_usage:
            await _event(send, {**base, "choices": [], "usage": usage})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


async def _read(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _reply(send: Send, status: int, data: dict[str, Any]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _JSON})
    await send({"type": "http.response.body", "body": orjson.dumps(data)})


async def _event(send: Send, data: dict[str, Any]) -> None:
    await send({"type": "http.response.body", "body": b"data: " + orjson.dumps(data) + b"\n\n", "more_body": True})


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}


def _completion(text: str, usage: dict[str, int]) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-demo-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": DEMO_MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": usage,
    }


def _usage(messages: list[Any], text: str) -> dict[str, int]:
    """Words stand in for tokens: the demo model has no tokenizer."""
    prompt = sum(len(str(m.get("content", "")).split()) for m in messages if isinstance(m, dict))
    completion = len(text.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
