"""The issue's yardstick: a minimal raw-ASGI pass-through (uvicorn + httptools + uvloop, as ``ailb serve`` runs)
forwarding with one pooled aiohttp client. No framework, no parsing, no routing: what any Python gateway on
AILB's stack costs at the least.

``python -m bench.passthrough_asgi --port 9100 --upstream http://127.0.0.1:9000 --cpu 1``
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import aiohttp
import uvicorn

FORWARDED = (b"content-type", b"authorization")
Message = dict[str, Any]


class PassThrough:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http":
            await self.forward(scope, receive, send)

    async def lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.session is not None:
                    await self.session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def forward(self, scope: Message, receive: Any, send: Any) -> None:
        assert self.session is not None
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {name.decode(): value.decode() for name, value in scope["headers"] if name in FORWARDED}
        url = self.upstream + scope["path"]
        async with self.session.request(scope["method"], url, data=body, headers=headers) as upstream:
            content_type = upstream.headers.get("Content-Type", "application/json").encode()
            if not content_type.startswith(b"text/event-stream"):
                payload = await upstream.read()
                head = [(b"content-type", content_type), (b"content-length", str(len(payload)).encode())]
                await send({"type": "http.response.start", "status": upstream.status, "headers": head})
                await send({"type": "http.response.body", "body": payload})
                return
            await send({"type": "http.response.start", "status": upstream.status,
                        "headers": [(b"content-type", content_type)]})  # fmt: skip
            async for chunk in upstream.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})


def main() -> None:
    parser = argparse.ArgumentParser(description="Minimal raw-ASGI + aiohttp pass-through (the issue's yardstick).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:9000")
    parser.add_argument("--cpu", type=int, help="pin this process to one CPU")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    uvicorn.run(
        PassThrough(args.upstream),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
