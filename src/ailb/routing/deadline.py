"""An attempt's deadline: ``asyncio.timeout``'s behaviour, at a fraction of its cost.

Every attempt runs under the request's deadline (``router.deadline``, 600 s by default), and almost every one
ends long before it. ``async with asyncio.timeout(...)`` costs ~5 µs per use on Python 3.11 (two coroutines for
the context manager, its state machine, a timer handle), and even a bare timer handle costs uvloop ~2 µs to
create and cancel. So a far deadline first waits in a one-second bucket: one timer per bucket, shared by all the
attempts whose deadlines fall in that second, gives each attempt still running its own exact timer once its
deadline is ``near`` (2 s) away. An attempt that ends before that costs a set insertion and removal. A deadline
already near gets its timer at once. Either way the attempt is cancelled at its deadline, to the loop's timer
precision, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")
NEAR = 2.0  # seconds: a deadline this close gets its own timer
BUCKET = 1.0  # seconds of deadlines that share one timer until they are near


class Deadlines:
    """The deadlines of one router's attempts. ``near`` and ``bucket`` (seconds) are for tests."""

    def __init__(self, near: float = NEAR, bucket: float = BUCKET) -> None:
        self._near = near
        self._bucket = bucket
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buckets: dict[int, set[_Expiry]] = {}  # the current loop's, by bucket number

    async def within(self, seconds: float, work: Awaitable[T]) -> T:
        """``await work`` in this task; when ``seconds`` pass first, it is cancelled and ``TimeoutError`` raised here.

        As with ``asyncio.timeout``: a cancellation from elsewhere (the client went away) passes through as
        ``CancelledError``, also when it comes together with the expiry; ``seconds`` <= 0 expires at once."""
        task = asyncio.current_task()
        assert task is not None
        expiry = _Expiry(task)
        self._arm(expiry, task.get_loop(), seconds)
        try:
            return await work
        except asyncio.CancelledError:
            if expiry.fired and task.uncancel() <= expiry.cancelling:
                raise TimeoutError from None
            raise
        finally:
            expiry.disarm()

    def _arm(self, expiry: _Expiry, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        due = loop.time() + seconds
        if seconds <= self._near:
            expiry.timer = loop.call_at(due, expiry.fire)
            return
        if loop is not self._loop:  # a new loop (in tests): the old one's buckets stay with its own timers
            self._loop, self._buckets = loop, {}
        expiry.due = due
        number = int((due - self._near) // self._bucket)  # its timer runs when these deadlines are near
        bucket = self._buckets.get(number)
        if bucket is None:
            bucket = self._buckets[number] = set()
            loop.call_at(number * self._bucket, self._come_near, loop, self._buckets, number)
        bucket.add(expiry)
        expiry.bucket = bucket

    @staticmethod
    def _come_near(loop: asyncio.AbstractEventLoop, buckets: dict[int, set[_Expiry]], number: int) -> None:
        for expiry in buckets.pop(number, ()):
            expiry.bucket = None
            expiry.timer = loop.call_at(expiry.due, expiry.fire)


class _Expiry:
    __slots__ = ("bucket", "cancelling", "due", "fired", "task", "timer")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.cancelling = task.cancelling()  # cancellations requested before: not ours to turn into a timeout
        self.fired = False
        self.due = 0.0
        self.bucket: set[_Expiry] | None = None
        self.timer: asyncio.TimerHandle | None = None

    def fire(self) -> None:
        self.fired = True
        self.task.cancel()

    def disarm(self) -> None:
        if self.bucket is not None:
            self.bucket.discard(self)
            self.bucket = None
        elif self.timer is not None:
            self.timer.cancel()
