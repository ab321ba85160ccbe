from __future__ import annotations

import asyncio
import time

import pytest

from ailb.routing.deadline import within


async def answer(value: str, after: float = 0.0) -> str:
    await asyncio.sleep(after)
    return value


async def test_the_answer_passes_and_the_timer_is_gone() -> None:
    assert await within(0.05, answer("hi")) == "hi"
    await asyncio.sleep(0.1)  # a timer left behind would cancel this task now
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_work_past_its_time_is_cancelled_and_times_out() -> None:
    cancelled = asyncio.Event()

    async def stuck() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    with pytest.raises(TimeoutError):
        await within(0.01, stuck())
    assert cancelled.is_set()
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # the expiry's own cancellation is taken back


async def test_no_time_left_times_out_at_once() -> None:
    with pytest.raises(TimeoutError):
        await within(0.0, answer("never", after=30))
    with pytest.raises(TimeoutError):
        await within(-1.0, answer("never", after=30))


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    task = asyncio.ensure_future(within(30, answer("never", after=30)))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancellation_from_elsewhere_that_meets_the_expiry_stays_a_cancellation() -> None:
    async def busy_then_stuck() -> str:
        time.sleep(0.05)  # noqa: ASYNC251 (on purpose: the expiry and the other cancellation come due together)
        await asyncio.sleep(30)
        return "never"

    task = asyncio.ensure_future(within(0.01, busy_then_stuck()))
    asyncio.get_running_loop().call_later(0.005, task.cancel)
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_error_of_the_work_passes_unchanged() -> None:
    async def broken() -> str:
        raise ValueError("upstream broke")

    with pytest.raises(ValueError, match="upstream broke"):
        await within(1.0, broken())
