from __future__ import annotations

import asyncio
import time

import pytest

from ailb.routing.deadline import Deadlines

# Every test runs with a deadline near enough for its own timer, and with one far enough to wait in a bucket
# first (scaled down: "near" is 20 ms, buckets are 10 ms).
NEAR, FAR = Deadlines(), Deadlines(near=0.02, bucket=0.01)
BOTH = pytest.mark.parametrize("deadlines", [NEAR, FAR], ids=["near", "far"])


async def answer(value: str, after: float = 0.0) -> str:
    await asyncio.sleep(after)
    return value


def cancellations() -> int:
    task = asyncio.current_task()
    assert task is not None
    return task.cancelling()


@BOTH
async def test_the_answer_passes_and_no_timer_is_left(deadlines: Deadlines) -> None:
    assert await deadlines.within(0.05, answer("hi")) == "hi"
    assert await deadlines.within(0.05, answer("later", after=0.035)) == "later"  # its exact timer was armed
    await asyncio.sleep(0.1)  # a timer left behind would cancel this task now
    assert cancellations() == 0


@BOTH
async def test_work_past_its_time_is_cancelled_and_times_out(deadlines: Deadlines) -> None:
    cancelled = asyncio.Event()

    async def stuck() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await deadlines.within(0.05, stuck())
    assert cancelled.is_set() and time.monotonic() - started >= 0.049  # not before its deadline
    assert cancellations() == 0  # the expiry's own cancellation is taken back


@BOTH
async def test_many_attempts_end_each_at_its_own_deadline(deadlines: Deadlines) -> None:
    async def attempt(seconds: float, work: float) -> str:
        try:
            return await deadlines.within(seconds, answer("done", after=work))
        except TimeoutError:
            return "timed out"

    runs = [attempt(0.03 + i * 0.004, 0.2 if i % 2 else 0.0) for i in range(10)]
    assert await asyncio.gather(*runs) == ["done", "timed out"] * 5


async def test_no_time_left_times_out_at_once() -> None:
    with pytest.raises(TimeoutError):
        await NEAR.within(0.0, answer("never", after=30))
    with pytest.raises(TimeoutError):
        await NEAR.within(-1.0, answer("never", after=30))


@BOTH
async def test_a_cancellation_from_elsewhere_stays_a_cancellation(deadlines: Deadlines) -> None:
    task = asyncio.ensure_future(deadlines.within(30, answer("never", after=30)))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancellation_from_elsewhere_that_meets_the_expiry_stays_a_cancellation() -> None:
    async def busy_then_stuck() -> str:
        time.sleep(0.05)  # noqa: ASYNC251 (on purpose: the expiry and the other cancellation come due together)
        await asyncio.sleep(30)
        return "never"

    task = asyncio.ensure_future(NEAR.within(0.01, busy_then_stuck()))
    asyncio.get_running_loop().call_later(0.005, task.cancel)
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_error_of_the_work_passes_unchanged() -> None:
    async def broken() -> str:
        raise ValueError("upstream broke")

    with pytest.raises(ValueError, match="upstream broke"):
        await FAR.within(1.0, broken())
