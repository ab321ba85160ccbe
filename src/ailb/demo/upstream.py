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
from aiohttp import web

from ailb.demo.echo import answer

DEMO_MODEL = "demo"


class EchoUpstream:
    """Binds its loopback port at once (so the gateway's configuration can name it); serves after ``start``."""

    def __init__(self, chunk_delay: float = 0.03) -> None:
        self.chunk_delay = chunk_delay
        self.api_key = "sk-ailb-demo-" + secrets.token_hex(12)  # only this gateway may use it
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._socket.close()

    async def _models(self, _request: web.Request) -> web.Response:
        card = {"id": DEMO_MODEL, "object": "model", "created": 0, "owned_by": "ailb-demo"}
        return web.json_response({"object": "list", "data": [card]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            error = {"message": "Incorrect API key.", "type": "invalid_request_error", "param": None, "code": None}
            return web.json_response({"error": error}, status=401)
        try:
            body = orjson.loads(await request.read())
            messages = body["messages"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            error = {"message": "Invalid request.", "type": "invalid_request_error", "param": None, "code": None}
            return web.json_response({"error": error}, status=400)
        text = answer(messages)
        usage = _usage(messages, text)
        if not body.get("stream"):
            return web.Response(body=orjson.dumps(_completion(text, usage)), content_type="application/json")
        return await self._stream(request, text, usage, bool((body.get("stream_options") or {}).get("include_usage")))

    async def _stream(
        self, request: web.Request, text: str, usage: dict[str, int], with_usage: bool
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        base = {"id": f"chatcmpl-demo-{uuid.uuid4().hex[:12]}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": DEMO_MODEL}  # fmt: skip
        deltas = [{"role": "assistant", "content": ""}] + [{"content": piece} for piece in re.findall(r"\S+\s*", text)]
        try:
            for delta in deltas:
                await _event(response, {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                await asyncio.sleep(self.chunk_delay)
            await _event(response, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if with_usage:
                await _event(response, {**base, "choices": [], "usage": usage})
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:
            pass  # the gateway cancelled the request: its client went away
        return response


async def _event(response: web.StreamResponse, data: dict[str, Any]) -> None:
    await response.write(b"data: " + orjson.dumps(data) + b"\n\n")


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
