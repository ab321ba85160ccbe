"""Live request figures for gRPC ``GetMetrics``: totals since start, a one-minute rate, a latency window.

Prometheus keeps the long-term series; this keeps the few live numbers MarchProxy polls, computed from real
samples: percentiles come from the durations of the most recent requests, never from a mean.
"""

from __future__ import annotations

import math
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
    """Counts requests as the HTTP layer starts and finishes them, and reports them to ``snapshot``: all on the
    event loop thread (the HTTP edge, gRPC ``GetMetrics`` and the dashboard run there), so no lock. The current
    second's count is kept apart and folded into the one-minute buckets when the second changes."""

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
        self._total = 0
        self._active = 0
        self._status_codes: dict[int, int] = {}
        self._routes: dict[str, _RouteCounter] = {}
        self._latencies: deque[float] = deque(maxlen=latency_window)
        self._second_of_bucket = [-1] * RATE_WINDOW_SECONDS
        self._count_in_bucket = [0] * RATE_WINDOW_SECONDS
        self._second = -1  # the second whose finished requests ``_count`` counts (not in the buckets yet)
        self._count = 0

    def started(self) -> None:
        self._total += 1
        self._active += 1

    def in_flight(self) -> float:
        """Requests started and not finished yet."""
        return self._active

    def finished(self, route: str, status: int, seconds: float, routed: bool) -> None:
        """``routed`` is true when the request reached a deployment; only those feed the latency window."""
        second = int(self._clock())
        if self._active > 0:
            self._active -= 1
        codes = self._status_codes
        codes[status] = codes.get(status, 0) + 1
        counter = self._routes.get(route)
        if counter is None:
            counter = self._routes[route] = _RouteCounter()
        counter.requests += 1
        counter.seconds += seconds
        if status >= 500:
            counter.errors += 1
        if routed:
            self._latencies.append(seconds)
        if second != self._second:
            self._fold_second(second)
        self._count += 1

    def _fold_second(self, second: int) -> None:
        """Put the finished second's count in its bucket and start counting ``second``."""
        if self._count:
            slot = self._second % RATE_WINDOW_SECONDS
            if self._second_of_bucket[slot] != self._second:
                self._second_of_bucket[slot] = self._second
                self._count_in_bucket[slot] = 0
            self._count_in_bucket[slot] += self._count
        self._second = second
        self._count = 0

    def snapshot(self) -> StatsSnapshot:
        now = self._clock()
        self._fold_second(self._second)
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
        status_codes = {str(code): count for code, count in self._status_codes.items()}
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
        avg_ms=1000 * sum(ordered, 0.0) / len(ordered),
    )


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending, non-empty list."""
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]
