"""An attempt's deadline: ``asyncio.timeout``'s behaviour at a third of its cost.

Every attempt runs under the request's deadline. ``async with asyncio.timeout(...)`` costs ~5 µs per use on
Python 3.11 (two coroutines for the context manager, its state machine, the task lookups, a timer handle); one
timer handle and a flag do the same job for ~1.5 µs, on the hot path of every request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


async def within(seconds: float, work: Awaitable[T]) -> T:
    """``await work`` in this task; when ``seconds`` pass first, it is cancelled and ``TimeoutError`` raised here.

    As with ``asyncio.timeout``: a cancellation from elsewhere (the client went away) passes through as
    ``CancelledError``, also when it comes together with the expiry; ``seconds`` <= 0 expires at once."""
    task = asyncio.current_task()
    assert task is not None
    loop = task.get_loop()
    expiry = _Expiry(task)
    timer = loop.call_at(loop.time() + seconds, expiry.fire)
    try:
        return await work
    except asyncio.CancelledError:
        if expiry.fired and task.uncancel() <= expiry.cancelling:
            raise TimeoutError from None
        raise
    finally:
        timer.cancel()


class _Expiry:
    __slots__ = ("cancelling", "fired", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.cancelling = task.cancelling()  # cancellations requested before: not ours to turn into a timeout
        self.fired = False

    def fire(self) -> None:
        self.fired = True
        self.task.cancel()
