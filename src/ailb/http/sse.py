"""A server-sent-event response written straight to the ASGI ``send``.

One watcher task per stream notices a client that disconnects and cancels the writer, which closes the
upstream iterator (and so the upstream call) in its ``finally``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import TypeVar

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ailb.http.parsing import ClientDisconnected

T = TypeVar("T")

_BASE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def wait_for_disconnect(receive: Receive) -> None:
    """Return once the client has gone (the request body must already have been read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """Await ``work`` in this task, but cancel it (and so the upstream call) as soon as the client disconnects;
    then raise ``ClientDisconnected``. One watcher task, and the work's result reaches the caller without a hop through
    another task."""
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        await wait_for_disconnect(receive)
        gone = True
        task.cancel()

    watcher = task.get_loop().create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if not gone:
            raise
        raise ClientDisconnected from None
    finally:
        # A watcher woken with the disconnect but not yet run is cancelled here, before it can cancel this task.
        watcher.cancel()
        if gone:
            task.uncancel()


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
