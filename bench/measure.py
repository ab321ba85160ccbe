"""Timing helpers shared by the in-process benchmarks (``bench.bench_rag``, ``bench.memory_layer``)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable


def percentile_line(samples: list[float], digits: int, *, with_max: bool = False) -> str:
    """``p50 … ms   p99 … ms   [max … ms]   (n=…)`` for ``samples`` in seconds, ``digits`` decimals."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    line = f"p50 {statistics.median(ordered) * 1000:8.{digits}f} ms   p99 {p99 * 1000:8.{digits}f} ms   "
    if with_max:
        line += f"max {ordered[-1] * 1000:8.{digits}f} ms   "
    return line + f"(n={len(ordered)})"


async def timed(runs: int, call: Callable[[int], Awaitable[object]]) -> list[float]:
    """Wall time of ``await call(i)`` for ``i`` in ``range(runs)``, one after the other."""
    samples = []
    for i in range(runs):
        started = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - started)
    return samples


async def loop_lag(seconds: float, interval: float) -> list[float]:
    """How late ``interval``-second sleeps wake up over ``seconds``: the event loop's delay for anything else."""
    lags = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        await asyncio.sleep(interval)
        lags.append(time.perf_counter() - started - interval)
    return lags
