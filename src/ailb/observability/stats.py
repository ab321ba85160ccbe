"""Live request figures for gRPC ``GetMetrics``: totals since start, a one-minute rate, a latency window.

Prometheus keeps the long-term series; this keeps the few live numbers MarchProxy polls, computed from real
samples: percentiles come from the durations of the most recent requests, never from a mean.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

RATE_WINDOW_SECONDS = 60
LATENCY_WINDOW_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class LatencySummary:
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    avg_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class RouteTotals:
    requests: int
    errors: int
    avg_latency_ms: float


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    timestamp: int
    total_requests: int
    active_requests: int
    requests_per_second: float
    latency: LatencySummary
    status_codes: dict[str, int]
    routes: dict[str, RouteTotals]


class _RouteCounter:
    __slots__ = ("errors", "requests", "seconds")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.seconds = 0.0


class RequestStats:
    """Counts requests as the HTTP layer starts and finishes them. Safe to call from any thread."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        latency_window: int = LATENCY_WINDOW_SIZE,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._started = clock()
        self._lock = threading.Lock()
        self._total = 0
        self._active = 0
        self._status_codes: dict[str, int] = {}
        self._routes: dict[str, _RouteCounter] = {}
        self._latencies: deque[float] = deque(maxlen=latency_window)
        self._second_of_bucket = [-1] * RATE_WINDOW_SECONDS
        self._count_in_bucket = [0] * RATE_WINDOW_SECONDS

    def started(self) -> None:
        with self._lock:
            self._total += 1
            self._active += 1

    def in_flight(self) -> float:
        """Requests started and not finished yet."""
        return self._active

    def finished(self, route: str, status: int, seconds: float, routed: bool) -> None:
        """``routed`` is true when the request reached a deployment; only those feed the latency window."""
        second = int(self._clock())
        with self._lock:
            self._active = max(0, self._active - 1)
            code = str(status)
            self._status_codes[code] = self._status_codes.get(code, 0) + 1
            counter = self._routes.get(route)
            if counter is None:
                counter = self._routes[route] = _RouteCounter()
            counter.requests += 1
            counter.seconds += seconds
            if status >= 500:
                counter.errors += 1
            if routed:
                self._latencies.append(seconds)
            slot = second % RATE_WINDOW_SECONDS
            if self._second_of_bucket[slot] != second:
                self._second_of_bucket[slot] = second
                self._count_in_bucket[slot] = 0
            self._count_in_bucket[slot] += 1

    def snapshot(self) -> StatsSnapshot:
        now = self._clock()
        with self._lock:
            latencies = sorted(self._latencies)
            recent = sum(
                count
                for stamp, count in zip(self._second_of_bucket, self._count_in_bucket, strict=True)
                if 0 <= int(now) - stamp < RATE_WINDOW_SECONDS
            )
            routes = {
                name: RouteTotals(c.requests, c.errors, 1000 * c.seconds / c.requests if c.requests else 0.0)
                for name, c in self._routes.items()
            }
            status_codes = dict(self._status_codes)
            total, active = self._total, self._active
        span = min(float(RATE_WINDOW_SECONDS), max(1.0, now - self._started))
        return StatsSnapshot(
            timestamp=int(self._wall_clock()),
            total_requests=total,
            active_requests=active,
            requests_per_second=recent / span,
            latency=_summarise(latencies),
            status_codes=status_codes,
            routes=routes,
        )


def _summarise(ordered: list[float]) -> LatencySummary:
    if not ordered:
        return LatencySummary()
    return LatencySummary(
        p50_ms=1000 * percentile(ordered, 50),
        p90_ms=1000 * percentile(ordered, 90),
        p95_ms=1000 * percentile(ordered, 95),
        p99_ms=1000 * percentile(ordered, 99),
        avg_ms=1000 * sum(ordered) / len(ordered),
    )


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending, non-empty list."""
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]
