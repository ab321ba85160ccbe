"""``StoreWorker``: a resource in one spawned worker process (or on threads), deadlines, restart, close."""

from __future__ import annotations

import functools
import os
import signal
import time
from pathlib import Path

import pytest

from ailb.stores.storeworker import StoreWorker, WorkerStopped, WorkerTimeout


class Counter:
    """A resource that remembers state between calls and leaves a mark when it is closed."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.calls = 0

    def close(self) -> None:
        (self.folder / f"closed-{os.getpid()}").touch()


def where(counter: Counter) -> tuple[int, int]:
    counter.calls += 1
    return os.getpid(), counter.calls


def add(counter: Counter, a: int, b: int, *, scale: int = 1) -> int:
    return (a + b) * scale


def fail(counter: Counter, message: str) -> None:
    raise ValueError(message)


def die(counter: Counter) -> None:
    os._exit(3)


def sleep(counter: Counter, seconds: float) -> None:
    time.sleep(seconds)


def marks(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def in_process(tmp_path: Path) -> StoreWorker[Counter]:
    return StoreWorker(functools.partial(Counter, str(tmp_path)), process=True)


async def test_calls_run_against_one_resource_in_a_spawned_worker(tmp_path: Path) -> None:
    worker = in_process(tmp_path)
    first_pid, first = await worker.call(60, where)
    second_pid, second = await worker.call(60, where)
    assert first_pid == second_pid != os.getpid()
    assert (first, second) == (1, 2)
    assert await worker.call(5, add, 2, 3, scale=10) == 50
    with pytest.raises(ValueError, match="comes back intact"):
        await worker.call(5, fail, "comes back intact")
    await worker.aclose()
    assert marks(tmp_path) == [f"closed-{first_pid}"]


async def test_a_worker_that_dies_is_replaced_with_a_fresh_resource(tmp_path: Path) -> None:
    worker = in_process(tmp_path)
    old_pid, _ = await worker.call(60, where)
    with pytest.raises(WorkerStopped):
        await worker.call(5, die)
    new_pid, calls = await worker.call(60, where)
    assert new_pid not in (old_pid, os.getpid())
    assert calls == 1
    await worker.aclose()


async def test_a_call_past_its_deadline_raises_and_the_worker_carries_on(tmp_path: Path) -> None:
    worker = in_process(tmp_path)
    pid, _ = await worker.call(60, where)
    with pytest.raises(WorkerTimeout) as late:
        await worker.call(0.2, sleep, 1.0)
    assert isinstance(late.value, TimeoutError) and late.value.deadline == 0.2
    assert (await worker.call(60, where))[0] == pid
    await worker.aclose()


async def test_closing_a_worker_that_was_killed_returns(tmp_path: Path) -> None:
    worker = in_process(tmp_path)
    pid, _ = await worker.call(60, where)
    os.kill(pid, signal.SIGKILL)
    await worker.aclose()
    assert marks(tmp_path) == []  # nothing was left to close the resource


async def test_on_threads_the_resource_lives_in_this_process(tmp_path: Path) -> None:
    worker = StoreWorker(functools.partial(Counter, str(tmp_path)), process=False, threads=2)
    assert await worker.call(5, where) == (os.getpid(), 1)
    with pytest.raises(WorkerTimeout):
        await worker.call(0.1, sleep, 0.5)
    await worker.aclose()
    assert marks(tmp_path) == [f"closed-{os.getpid()}"]
