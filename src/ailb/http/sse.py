"""A server-sent-event response written straight to the ASGI ``send``.

One watch per request (``ClientWatch``) notices a client that disconnects and cancels the handler while it waits
for the stream's first content, then the writer, which closes the upstream iterator (and so the upstream call) in
its ``finally``. Under ``ailb serve`` the server calls the watch back when the connection is lost (its scope
extension ``ON_DISCONNECT``); under any other ASGI server a watcher task waits on ``receive`` for
``http.disconnect``.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ailb.http.exchange import ON_DISCONNECT, nothing_to_stop
from ailb.http.parsing import ClientDisconnected

T = TypeVar("T")
Watched = Callable[[Callable[[], None]], Callable[[], None]]

_BASE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def wait_for_disconnect(receive: Receive) -> None:
    """Return once the client has gone (the request body must already have been read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class ClientWatch:
    """Notices the client disconnecting and, while ``armed``, then cancels the request's task (``cancelled``). The
    wait for a stream's first content (``guard``) and the writing of the stream (``EventStreamResponse``) share
    one watch: the server's callback (``ON_DISCONNECT``) where it offers one, else one watcher task."""

    __slots__ = ("_stop", "_task", "armed", "cancelled", "gone")

    def __init__(self, receive: Receive, scope: Scope | None = None) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self.armed = False
        self.gone = self.cancelled = False
        extensions = scope.get("extensions") if scope is not None else None
        on_disconnect: Watched | None = extensions.get(ON_DISCONNECT) if extensions else None
        self._stop: Callable[[], object] = (
            on_disconnect(self._gone)
            if on_disconnect is not None
            else task.get_loop().create_task(self._watch(receive)).cancel
        )

    async def _watch(self, receive: Receive) -> None:
        await wait_for_disconnect(receive)
        self._gone()

    def _gone(self) -> None:
        self.gone = True
        self._cancel()

    def _cancel(self) -> None:
        # Runs while the task waits (this watcher, or a callback): the task is cancelled where it waits.
        if self.armed and not self.cancelled:
            self.cancelled = True
            self._task.cancel()

    def serves(self, task: asyncio.Task[Any] | None) -> bool:
        return task is self._task

    def arm(self) -> None:
        """Cancel the task when the client goes; if it has gone already, when the task next waits (still armed)."""
        self.armed = True
        if self.gone:
            self._task.get_loop().call_soon(self._cancel)

    def disarm(self) -> bool:
        """Stop cancelling; whether the client's going cancelled the task (a cancel then taken back)."""
        # A watcher woken with the disconnect but not yet run no longer cancels the task once this has run.
        self.armed = False
        cancelled, self.cancelled = self.cancelled, False
        if cancelled:
            self._task.uncancel()
        return cancelled

    def close(self) -> None:
        self.armed = False
        stop, self._stop = self._stop, nothing_to_stop  # the server's handle holds this watch's callback: a cycle
        stop()

    async def guard(self, work: Awaitable[T]) -> T:
        """Await ``work`` in this task, but cancel it (and so the upstream call) as soon as the client disconnects;
        then raise ``ClientDisconnected`` and close the watch. The work's result reaches the caller without a hop
        through another task; the watch stays open (disarmed) for what follows."""
        self.arm()
        try:
            return await work
        except asyncio.CancelledError:
            if not self.disarm():
                self.close()
                raise
            self.close()
            raise ClientDisconnected from None
        except BaseException:
            self.close()
            raise
        finally:
            self.disarm()


async def unless_disconnected(receive: Receive, work: Awaitable[T], scope: Scope | None = None) -> T:
    """Await ``work`` in this task, but cancel it (and so the upstream call) as soon as the client disconnects;
    then raise ``ClientDisconnected``. ``scope``: the request's, for the server's disconnect callback."""
    watch = ClientWatch(receive, scope)
    try:
        return await watch.guard(work)
    finally:
        watch.close()


class LastFrame(bytes):
    """The stream's last frame: written with the end of the response, in one write."""

    __slots__ = ()


class EventStream(Response, ABC):
    """A server-sent-event response: the start, then what ``_write`` sends; the last frame it returns goes with
    the end of the response, in one write. ``_closing`` closes what the frames come from, however it ends."""

    def __init__(
        self, headers: Mapping[str, str] | list[tuple[bytes, bytes]], watch: ClientWatch | None = None
    ) -> None:
        """``headers``: a mapping, or raw ASGI header pairs (lower-case names); ``watch``: the request's
        ``ClientWatch`` when the handler has one (else the response starts its own)."""
        self.status_code = 200
        self.background = None
        if isinstance(headers, list):
            self.raw_headers = _BASE_HEADERS + headers
        else:
            self.raw_headers = [*_BASE_HEADERS, *((k.lower().encode(), v.encode()) for k, v in headers.items())]
        self.watch = watch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watch = self.watch
        if watch is None or not watch.serves(asyncio.current_task()):
            if watch is not None:
                watch.close()
            watch = ClientWatch(receive, scope)
        try:
            watch.arm()
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            last = await self._write(send)
            watch.armed = False
            await send({"type": "http.response.body", "body": last, "more_body": False})
        except asyncio.CancelledError:
            if not watch.disarm():
                raise
        finally:
            watch.close()
            await self._closing()

    @abstractmethod
    async def _write(self, send: Send) -> bytes:
        """Send each frame (``more_body``) but the last, which is returned."""

    @abstractmethod
    def _closing(self) -> Awaitable[None]:
        """Closes the frames' source (and so the upstream call)."""


class EventStreamResponse(EventStream):
    """Writes each frame as it comes; a ``LastFrame`` ends the response."""

    def __init__(
        self,
        frames: AsyncIterator[bytes],
        headers: Mapping[str, str] | list[tuple[bytes, bytes]],
        watch: ClientWatch | None = None,
    ) -> None:
        super().__init__(headers, watch)
        self.frames = frames

    async def _write(self, send: Send) -> bytes:
        async for frame in self.frames:
            if type(frame) is LastFrame:
                return frame
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        return b""

    def _closing(self) -> Awaitable[None]:
        return self.frames.aclose()  # type: ignore[attr-defined,no-any-return]
