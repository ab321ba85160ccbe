"""A server-sent-event response written straight to the ASGI ``send``.

One watcher task per stream notices a client that disconnects and cancels the writer, which closes the
upstream iterator (and so the upstream call) in its ``finally``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

_BASE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def wait_for_disconnect(receive: Receive) -> None:
    """Return once the client has gone (the request body must already have been read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class EventStreamResponse(Response):
    def __init__(self, frames: AsyncIterator[bytes], headers: Mapping[str, str]) -> None:
        self.frames = frames
        self.status_code = 200
        self.background = None
        self.raw_headers = [*_BASE_HEADERS, *((k.lower().encode(), v.encode()) for k, v in headers.items())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        writer = asyncio.current_task()
        assert writer is not None
        state = {"finished": False, "disconnected": False}

        async def watch() -> None:
            await wait_for_disconnect(receive)
            if not state["finished"]:
                state["disconnected"] = True
                writer.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for frame in self.frames:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            state["finished"] = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not state["disconnected"]:
                raise
            writer.uncancel()
        finally:
            state["finished"] = True
            watcher.cancel()
            await self.frames.aclose()  # type: ignore[attr-defined]
