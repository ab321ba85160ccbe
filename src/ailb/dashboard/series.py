"""The dashboard's charts: per-deployment samples over the last minutes, in a ring buffer.

A background task samples the router every ``interval`` seconds (2 s; 300 samples keep 10 minutes): the
requests and failures each deployment recorded since the previous sample, and the median latency and time to
first token of the answers that completed in between. It reads the counters the router keeps anyway, so the
request path pays nothing for the charts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from ailb.routing.deployment import Deployment

log = logging.getLogger("ailb.dashboard")

INTERVAL_SECONDS = 2.0
SAMPLES = 300


class _Track:
    """One deployment's series, and the counters it last saw."""

    __slots__ = ("errors", "failures_seen", "latency_ms", "requests", "requests_per_second", "requests_seen",
                 "ttft_ms")  # fmt: skip

    def __init__(self, length: int, samples: int, deployment: Deployment) -> None:
        self.requests_per_second: deque[float | None] = deque([None] * length, maxlen=samples)
        self.errors: deque[int | None] = deque([None] * length, maxlen=samples)
        self.latency_ms: deque[float | None] = deque([None] * length, maxlen=samples)
        self.ttft_ms: deque[float | None] = deque([None] * length, maxlen=samples)
        self.requests_seen = deployment.stats.requests
        self.failures_seen = deployment.stats.failures


class TrafficSeries:
    """Samples of every deployment, aligned on shared sample times (``None`` where there is nothing to show)."""

    def __init__(
        self,
        interval: float = INTERVAL_SECONDS,
        samples: int = SAMPLES,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.interval = interval
        self.samples = samples
        self._clock = clock
        self._wall_clock = wall_clock
        self._times: deque[float] = deque(maxlen=samples)
        self._tracks: dict[str, _Track] = {}
        self._last = clock()
        self._task: asyncio.Task[None] | None = None

    def watch(self, deployments: Sequence[Deployment]) -> None:
        """Start counting from now for ``deployments`` not seen yet; forget those gone."""
        for name in set(self._tracks) - {d.name for d in deployments}:
            del self._tracks[name]
        for deployment in deployments:
            if deployment.name not in self._tracks:
                self._tracks[deployment.name] = _Track(len(self._times), self.samples, deployment)

    def sample(self, deployments: Sequence[Deployment]) -> None:
        """Take one sample of ``deployments``: what each did since the previous sample."""
        now = self._clock()
        elapsed = max(now - self._last, 1e-6)
        self.watch(deployments)
        for deployment in deployments:
            self._record(self._tracks[deployment.name], deployment, elapsed)
        self._times.append(self._wall_clock())
        self._last = now

    def _record(self, track: _Track, deployment: Deployment, elapsed: float) -> None:
        stats = deployment.stats
        # A counter that went back (the deployment was rebuilt without its stats) starts a new baseline.
        requests = max(0, stats.requests - track.requests_seen)
        failures = max(0, stats.failures - track.failures_seen)
        track.requests_seen, track.failures_seen = stats.requests, stats.failures
        track.requests_per_second.append(round(requests / elapsed, 3))
        track.errors.append(failures)
        track.latency_ms.append(_median_ms(stats.latency_window.values_since(self._last)))
        track.ttft_ms.append(_median_ms(stats.ttft_window.values_since(self._last)))

    def snapshot(self) -> dict[str, Any]:
        return {
            "interval_seconds": self.interval,
            "times": list(self._times),
            "deployments": {
                name: {
                    "requests_per_second": list(track.requests_per_second),
                    "errors": list(track.errors),
                    "latency_ms": list(track.latency_ms),
                    "ttft_ms": list(track.ttft_ms),
                }
                for name, track in self._tracks.items()
            },
        }

    def start(self, deployments: Callable[[], Sequence[Deployment]]) -> None:
        """Sample ``deployments()`` (the router in force) every ``interval`` seconds until ``aclose``."""
        if self._task is None:
            self._last = self._clock()
            self.watch(deployments())
            self._task = asyncio.create_task(self._run(deployments), name="ailb-dashboard-series")

    async def _run(self, deployments: Callable[[], Sequence[Deployment]]) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.sample(deployments())
            except Exception:  # a bug here must not stop the charts for good
                log.exception("dashboard sampling failed")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _median_ms(values: list[float]) -> float | None:
    return round(statistics.median(values) * 1000.0, 3) if values else None
