"""The yardstick: a minimal aiohttp pass-through proxy (no parsing, no routing), on uvloop like AILB.

``python -m bench.passthrough --port 9100 --upstream http://127.0.0.1:9000 --cpu 1``
"""

from __future__ import annotations

import argparse
import os

import aiohttp
import uvloop
from aiohttp import web

FORWARDED = ("Content-Type", "Authorization")


async def forward(request: web.Request) -> web.StreamResponse:
    session: aiohttp.ClientSession = request.app["session"]
    headers = {name: request.headers[name] for name in FORWARDED if name in request.headers}
    body = await request.read()
    async with session.request(request.method, request.app["upstream"] + request.path_qs, data=body,
                               headers=headers) as upstream:  # fmt: skip
        content_type = upstream.headers.get("Content-Type", "application/json")
        if not content_type.startswith("text/event-stream"):
            return web.Response(body=await upstream.read(), status=upstream.status, content_type=content_type)
        response = web.StreamResponse(status=upstream.status, headers={"Content-Type": content_type})
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def open_session(app: web.Application) -> None:
    app["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


async def close_session(app: web.Application) -> None:
    await app["session"].close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Minimal aiohttp pass-through proxy (the benchmark's yardstick).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:9000")
    parser.add_argument("--cpu", type=int, help="pin this process to one CPU")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    app = web.Application()
    app["upstream"] = args.upstream.rstrip("/")
    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    app.router.add_route("*", "/{tail:.*}", forward)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
