"""Waiting, in async tests, for something another task or thread does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def eventually(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    """Return once ``condition()`` holds (checked every 10 ms); fail the test if it does not within ``seconds``
    (a generous bound: it only delays a failure on a loaded machine)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not become true in time"
        await asyncio.sleep(0.01)
