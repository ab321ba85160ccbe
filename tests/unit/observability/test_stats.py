from __future__ import annotations

import random

import pytest

from ailb.observability.metrics import Metrics
from ailb.observability.stats import RequestStats, percentile


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_percentiles_come_from_the_distribution_not_the_mean() -> None:
    clock = Clock()
    stats = RequestStats(clock=clock, wall_clock=lambda: 1_700_000_000.0)
    # 90 fast requests and 10 slow ones: p50 is fast, p95 and p99 are slow, the mean is neither.
    durations = [0.010] * 90 + [1.0] * 10
    random.Random(7).shuffle(durations)
    for seconds in durations:
        stats.started()
        stats.finished("m", 200, seconds, routed=True)
    latency = stats.snapshot().latency
    assert latency.p50_ms == pytest.approx(10.0)
    assert latency.p90_ms == pytest.approx(10.0)
    assert latency.p95_ms == pytest.approx(1000.0)
    assert latency.p99_ms == pytest.approx(1000.0)
    assert latency.avg_ms == pytest.approx(109.0)


def test_nearest_rank_percentile() -> None:
    ordered = [float(i) for i in range(1, 101)]
    assert percentile(ordered, 50) == 50
    assert percentile(ordered, 99) == 99
    assert percentile([3.0], 99) == 3.0


def test_latency_window_keeps_only_recent_requests() -> None:
    stats = RequestStats(clock=Clock(), latency_window=10)
    for _ in range(10):
        stats.finished("m", 200, 5.0, routed=True)
    for _ in range(10):
        stats.finished("m", 200, 0.001, routed=True)
    assert stats.snapshot().latency.p99_ms == pytest.approx(1.0)


def test_unrouted_requests_do_not_skew_latency() -> None:
    stats = RequestStats(clock=Clock())
    stats.finished("m", 200, 0.5, routed=True)
    stats.finished("m", 429, 0.0001, routed=False)
    snapshot = stats.snapshot()
    assert snapshot.latency.p50_ms == pytest.approx(500.0)
    assert snapshot.status_codes == {"200": 1, "429": 1}


def test_requests_per_second_over_the_last_minute() -> None:
    clock = Clock(1000.0)
    stats = RequestStats(clock=clock)
    clock.now = 1100.0  # up for longer than the window
    for second in range(60):
        clock.now = 1100.0 + second
        for _ in range(3):
            stats.finished("m", 200, 0.1, routed=True)
    assert stats.snapshot().requests_per_second == pytest.approx(3.0)
    clock.now += 30  # half of the window has no traffic any more
    assert stats.snapshot().requests_per_second == pytest.approx(1.5, abs=0.06)
    clock.now += 120
    assert stats.snapshot().requests_per_second == 0


def test_rate_is_over_uptime_when_younger_than_a_minute() -> None:
    clock = Clock(0.0)
    stats = RequestStats(clock=clock)
    clock.now = 10.0
    for _ in range(50):
        stats.finished("m", 200, 0.1, routed=True)
    assert stats.snapshot().requests_per_second == pytest.approx(5.0)


def test_totals_active_status_codes_and_routes() -> None:
    stats = RequestStats(clock=Clock(), wall_clock=lambda: 1_700_000_123.9)
    for _ in range(4):
        stats.started()
    stats.finished("a", 200, 0.1, routed=True)
    stats.finished("a", 503, 0.3, routed=True)
    stats.finished("b", 400, 0.2, routed=False)
    snapshot = stats.snapshot()
    assert snapshot.timestamp == 1_700_000_123
    assert snapshot.total_requests == 4
    assert snapshot.active_requests == 1
    assert snapshot.status_codes == {"200": 1, "503": 1, "400": 1}
    assert snapshot.routes["a"].requests == 2
    assert snapshot.routes["a"].errors == 1
    assert snapshot.routes["a"].avg_latency_ms == pytest.approx(200.0)
    assert snapshot.routes["b"].errors == 0


def test_metrics_snapshot_uses_bounded_model_labels() -> None:
    metrics = Metrics(models=["m"], deployments=["d"])
    metrics.request_started()
    metrics.request_finished("m", "d", 200, 0.1, 0.1, None)
    metrics.request_started()
    metrics.request_finished("nonsense", "", 404, 0.001, 0.0, None)
    snapshot = metrics.snapshot()
    assert set(snapshot.routes) == {"m", "other"}
    assert snapshot.total_requests == 2
    assert snapshot.active_requests == 0
