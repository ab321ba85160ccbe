from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ailb.dashboard.series import TrafficSeries
from ailb.routing.stats import DeploymentStats


@dataclass
class Watched:
    """What the sampler reads of a deployment: its name and live stats."""

    name: str
    stats: DeploymentStats = field(default_factory=DeploymentStats)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def series(clock: Clock, samples: int = 300) -> TrafficSeries:
    return TrafficSeries(2.0, samples, clock=clock, wall_clock=lambda: 1_700_000_000 + clock.now)


def answer(target: Watched, seconds: float, at: float, failed: bool = False) -> None:
    if failed:
        target.stats.record_failure("Deployment failed with HTTP 500.", at)
    else:
        target.stats.record_success(None, 0.0, at)
        target.stats.record_latency(seconds, at)


def test_each_sample_counts_what_happened_since_the_previous_one() -> None:
    clock, east = Clock(), Watched("east")
    answer(east, 0.5, 99.0)  # before the charts started: not in any sample
    traffic = series(clock)
    traffic.watch([east])  # type: ignore[list-item]
    clock.now = 101.0
    answer(east, 0.1, 100.5)
    answer(east, 0.3, 101.0)
    answer(east, 9.0, 101.0, failed=True)
    clock.now = 102.0
    traffic.sample([east])  # type: ignore[list-item]
    clock.now = 106.0
    traffic.sample([east])  # type: ignore[list-item]
    shown = traffic.snapshot()
    track = shown["deployments"]["east"]
    assert track["requests_per_second"] == [1.5, 0.0]  # 3 requests over 2 s, then none over 4 s
    assert track["errors"] == [1, 0]
    assert track["latency_ms"] == [200.0, None]  # the median of the answers in between; none: nothing to draw
    assert track["ttft_ms"] == [None, None]
    assert shown["times"] == [1_700_000_102.0, 1_700_000_106.0] and shown["interval_seconds"] == 2.0


def test_deployments_coming_and_going_stay_aligned_and_the_ring_is_bounded() -> None:
    clock, east, west = Clock(), Watched("east"), Watched("west")
    traffic = series(clock, samples=3)
    for _ in range(2):
        clock.now += 2
        traffic.sample([east])  # type: ignore[list-item]
    answer(west, 0.2, clock.now)  # counted before west is watched: its baseline starts after it
    clock.now += 2
    traffic.sample([east, west])  # type: ignore[list-item]
    clock.now += 2
    traffic.sample([west])  # type: ignore[list-item]
    shown = traffic.snapshot()
    assert list(shown["deployments"]) == ["west"]  # east is gone from the configuration
    assert shown["deployments"]["west"]["requests_per_second"] == [None, 0.0, 0.0]
    assert len(shown["times"]) == 3


def test_a_counter_that_went_back_starts_a_new_baseline() -> None:
    clock, east = Clock(), Watched("east")
    traffic = series(clock)
    for _ in range(4):
        answer(east, 0.1, clock.now)
    traffic.watch([east])  # type: ignore[list-item]
    east.stats = DeploymentStats()  # rebuilt without its stats
    answer(east, 0.1, clock.now)
    clock.now += 2
    traffic.sample([east])  # type: ignore[list-item]
    answer(east, 0.1, clock.now)
    clock.now += 2
    traffic.sample([east])  # type: ignore[list-item]
    assert traffic.snapshot()["deployments"]["east"]["requests_per_second"] == [0.0, 0.5]


def test_the_sampler_runs_in_the_background() -> None:
    import asyncio

    async def scenario() -> dict[str, Any]:
        east = Watched("east")
        traffic = TrafficSeries(0.01, 50)
        traffic.start(lambda: [east])  # type: ignore[list-item, return-value]
        answer(east, 0.1, 0.0)
        for _ in range(200):
            await asyncio.sleep(0.01)
            if any(traffic.snapshot()["deployments"]["east"]["requests_per_second"]):
                break
        await traffic.aclose()
        return traffic.snapshot()

    shown = asyncio.run(scenario())
    assert sum(1 for v in shown["deployments"]["east"]["requests_per_second"] if v) == 1
