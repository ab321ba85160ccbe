"""The embedding model's thread: calls in order, results and errors through futures, never holding up exit."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ailb.embeddings.daemon_thread import DaemonThreadExecutor


def test_calls_run_in_order_on_one_daemon_thread() -> None:
    executor = DaemonThreadExecutor("test-embed")
    seen: list[tuple[int, str, bool]] = []

    def note(i: int) -> int:
        thread = threading.current_thread()
        seen.append((i, thread.name, thread.daemon))
        return i * 2

    futures = [executor.submit(note, i) for i in range(5)]
    assert [f.result(5) for f in futures] == [0, 2, 4, 6, 8]
    assert seen == [(i, "test-embed", True) for i in range(5)]
    failing = executor.submit(int, "not a number")
    with pytest.raises(ValueError):
        failing.result(5)
    executor.shutdown()
    with pytest.raises(RuntimeError):
        executor.submit(note, 9)


def test_shutdown_can_cancel_what_has_not_started() -> None:
    executor = DaemonThreadExecutor("test-embed")
    started, gate = threading.Event(), threading.Event()

    def hold() -> bool:
        started.set()
        return gate.wait(5)

    running = executor.submit(hold)
    assert started.wait(5)
    queued = executor.submit(int, "1")
    executor.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled()
    gate.set()
    assert running.result(5) is True


async def test_it_serves_the_event_loop() -> None:
    executor = DaemonThreadExecutor("test-embed")
    assert await asyncio.get_running_loop().run_in_executor(executor, sum, [1, 2, 3]) == 6
    executor.shutdown()
