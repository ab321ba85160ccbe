"""Blocking store calls, awaitable, each with a deadline, never holding up the event loop.

A ``StoreWorker`` runs picklable top-level callables ``operation(resource, *args)`` against one resource per
process, built by ``factory`` (a picklable callable, e.g. a class or a ``functools.partial``):

- ``process=True``: the resource lives in ONE spawned worker process. Embedded ChromaDB holds the GIL through
  its writes, so on a thread it would stall the event loop, and two processes must never open the same folder.
  A worker that dies is replaced; the call that saw it die raises ``WorkerStopped``.
- ``process=False``: the resource lives in this process and calls run on a thread pool (a server client mostly
  waits on sockets, which releases the GIL).

A call past its deadline raises ``WorkerTimeout`` (a ``TimeoutError``); the work itself cannot be interrupted
and finishes on its own. Closing asks the resource to ``close()`` where it lives, then stops the pool. This
module knows nothing about any store: each caller turns these errors into its own at its seam.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar

CLOSE_TIMEOUT = 10.0  # a worker that is gone or stuck is left to finish on its own


class Closable(Protocol):
    def close(self) -> None: ...


R = TypeVar("R", bound=Closable)
P = ParamSpec("P")
T = TypeVar("T")


class WorkerTimeout(TimeoutError):
    """The call did not finish within its deadline."""

    def __init__(self, deadline: float) -> None:
        super().__init__(f"no answer within {deadline:g} s")
        self.deadline = deadline


class WorkerStopped(RuntimeError):
    """The worker process died during the call; the next call runs in a new one."""


class StoreWorker(Generic[R]):
    def __init__(
        self, factory: Callable[[], R], *, process: bool, threads: int = 4, thread_name: str = "ailb-store"
    ) -> None:
        self.process = process
        self._factory = factory
        self._local: R | None = None if process else factory()
        self._executor: Executor = (
            self._new_pool() if process else ThreadPoolExecutor(max_workers=threads, thread_name_prefix=thread_name)
        )

    async def call(
        self, deadline: float, operation: Callable[Concatenate[R, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``operation(resource, *args, **kwargs)`` where the resource lives, within ``deadline`` seconds."""
        executor = self._executor
        loop = asyncio.get_running_loop()
        if self._local is None:
            future = loop.run_in_executor(executor, _run_in_worker, operation, args, kwargs)
        else:
            future = loop.run_in_executor(executor, _apply, self._local, operation, args, kwargs)
        try:
            return await asyncio.wait_for(future, deadline)
        except TimeoutError as exc:
            raise WorkerTimeout(deadline) from exc
        except BrokenProcessPool as exc:
            if self._executor is executor:  # concurrent calls saw the same death: replace the process once
                executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_pool()
            raise WorkerStopped("the worker process stopped; the next call starts a new one") from exc

    async def aclose(self) -> None:
        """Close the resource where it lives, then stop the pool (waiting for a worker process to exit)."""
        try:
            await self.call(CLOSE_TIMEOUT, _close)
        except Exception:
            self._executor.shutdown(wait=False, cancel_futures=True)
            return
        if self.process:
            await asyncio.to_thread(self._executor.shutdown, True)
        else:  # calls abandoned at their deadline may still hang on a thread: do not wait for them
            self._executor.shutdown(wait=False, cancel_futures=True)

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self._factory,),
        )


def _close(resource: Closable) -> None:
    resource.close()


def _apply(resource: Any, operation: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    return operation(resource, *args, **kwargs)


# --- inside a worker process ------------------------------------------------------------------------------------
_worker_resource: list[Any] = []  # this process's resource, when it is a worker


def _start_worker(factory: Callable[[], Any]) -> None:
    """Process-pool initializer. Ctrl-C is for the gateway, which then closes the worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_resource.append(factory())


def _run_in_worker(operation: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    return _apply(_worker_resource[0], operation, args, kwargs)
