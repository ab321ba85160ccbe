"""Run an asyncio server (a fake, or anything with ``async start()``/``async stop()``) on its own thread.

For synchronous SDK clients and for a gateway running on another event loop::

    with ThreadedServer(OpenAIFake(api_key="sk-test")) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test")
        server.server.fail_next(Fault.status(500))   # the scripting API is thread-safe
        server.call(lambda: server.server.requests.clear())   # or run anything on the server's loop
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar, cast


class Startable(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)
T = TypeVar("T")


class ThreadedServer(Generic[S]):
    def __init__(self, server: S, *, timeout: float = 10.0) -> None:
        self.server = server
        self._timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    @property
    def base_url(self) -> str:
        return str(cast(Any, self.server).base_url)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the server is not running")
        return self._loop

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"threaded-{type(self.server).__name__}", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._timeout):
            raise TimeoutError(f"{type(self.server).__name__} did not start within {self._timeout}s")
        if self._failure is not None:
            raise RuntimeError(f"{type(self.server).__name__} failed to start") from self._failure

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(self._timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(self._timeout)
            self._loop = None

    def call(self, fn: Callable[[], Awaitable[T]] | Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop and return its result (awaited when it is a coroutine)."""

        async def run() -> T:
            result = fn()
            if inspect.isawaitable(result):
                return cast(T, await result)
            return result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(self._timeout)

    def __enter__(self) -> ThreadedServer[S]:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.server.start())
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
            loop.close()
            return
        self._loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
