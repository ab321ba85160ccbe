"""Traffic weights set over gRPC shift the traffic the gateway actually sends (blue/green roll-out)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import GatewayFactory
from tests.integration.control_support import (
    MODEL,
    Control,
    Fakes,
    config_yaml,
    gateway_env,
    routing_stats,
    served_by,
    started_fakes,
    stream_in_background,
)
from tests.integration.harness import RunningGateway

SAMPLES = 200
# 50/50 over 200 requests: the blue count is Binomial(200, 0.5), sd ≈ 7.1; ±35 is ~5 sd (false alarm < 1e-6).
HALF_TOLERANCE = 35


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    # two deployments per colour, so a version label must reach every deployment that carries it
    with started_fakes(["blue-a", "blue-b", "green-a", "green-b"]) as running:
        yield running


@pytest.fixture
def gateway(run_gateway: GatewayFactory, fakes: Fakes) -> RunningGateway:
    versions = {name: name.split("-")[0] for name in fakes}
    return run_gateway(gateway_env(), config_yaml(fakes, versions))


def colours(tally: dict[str, int]) -> dict[str, int]:
    by_colour: dict[str, int] = {}
    for deployment, count in tally.items():
        colour = deployment.split("-")[0]
        by_colour[colour] = by_colour.get(colour, 0) + count
    return by_colour


def test_blue_green_roll_out_shifts_measured_traffic(control: Control, gateway: RunningGateway) -> None:
    with httpx.Client(timeout=30) as http:
        blue_only = control.weights(MODEL, blue=100, green=0)
        assert blue_only.success, blue_only.message
        assert {w.backend_name: w.weight for w in blue_only.applied_weights} == {
            "blue-a": 100, "blue-b": 100, "green-a": 0, "green-b": 0,
        }  # fmt: skip
        assert colours(served_by(http, gateway, 60)) == {"blue": 60}

        half = control.weights(MODEL, blue=50, green=50)
        assert half.success, half.message
        split = colours(served_by(http, gateway, SAMPLES))
        assert abs(split.get("blue", 0) - SAMPLES / 2) <= HALF_TOLERANCE, split
        assert split["blue"] + split["green"] == SAMPLES

        green_only = control.weights(MODEL, blue=0, green=100)
        assert green_only.success, green_only.message
        tally = served_by(http, gateway, 60)
        assert colours(tally) == {"green": 60}
        assert set(tally) == {"green-a", "green-b"}, "the label reached both green deployments"

        stats = routing_stats(http, gateway)
    assert_weights_in_stats(stats, MODEL, {"blue-a": 0, "blue-b": 0, "green-a": 100, "green-b": 100})


def test_weights_by_deployment_name_and_for_every_route(control: Control, gateway: RunningGateway) -> None:
    with httpx.Client(timeout=30) as http:
        everywhere = control.weights("*", **{"blue-a": 100, "blue-b": 0, "green-a": 0, "green-b": 0})
        assert everywhere.success, everywhere.message
        assert served_by(http, gateway, 20) == {"blue-a": 20}
        assert served_by(http, gateway, 10, model="smart") == {"blue-a": 10}


def test_a_drained_backend_finishes_its_in_flight_stream(
    control: Control, gateway: RunningGateway, fakes: Fakes
) -> None:
    assert control.weights(MODEL, blue=100, green=0).success
    for fake in fakes.values():
        fake.server.reply = "one two three four five six seven eight"
        fake.server.stream_chunk_delay = 0.1
    try:
        reader, body = stream_in_background(gateway)
        drained = control.weights(MODEL, blue=0, green=100)
        assert drained.success, drained.message
        with httpx.Client(timeout=30) as other:
            tally = served_by(other, gateway, 6)
        reader.join(30)
        assert body[0].startswith("blue")
        streamed = "".join(body[1:])
        assert "eight" in streamed
        assert streamed.rstrip().endswith("data: [DONE]")
        assert colours(tally) == {"green": 6}
    finally:
        for fake in fakes.values():
            fake.server.reply = "Hello"
            fake.server.stream_chunk_delay = 0.0


def assert_weights_in_stats(stats: dict[str, object], route: str, expected: dict[str, int]) -> None:
    weights = stats.get("traffic_weights")
    assert isinstance(weights, dict), stats
    assert weights.get(route) == expected
