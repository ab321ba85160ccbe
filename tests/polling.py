"""Waiting for something another task, thread or process does."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx


async def eventually(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    """Return once ``condition()`` holds (checked every 10 ms); fail the test if it does not within ``seconds``
    (a generous bound: it only delays a failure on a loaded machine)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not become true in time"
        await asyncio.sleep(0.01)


def wait_for_health(
    base: str,
    process: subprocess.Popen[Any],
    seconds: float,
    log: Callable[[], str] = lambda: "",
    ready: Callable[[httpx.Response], bool] = lambda _answer: True,
) -> None:
    """Poll ``base + "/healthz"`` until an answer is ``ready`` (by default: any answer); fail, showing ``log()``, if
    ``process`` exits first or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if ready(httpx.get(base + "/healthz", timeout=2)):
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, f"the server exited with {process.returncode}:\n{log()}"
        assert time.monotonic() < deadline, f"the server did not answer within {seconds} s:\n{log()}"
        time.sleep(0.1)
