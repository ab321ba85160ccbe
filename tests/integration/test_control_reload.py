"""Reload over gRPC: a changed config file swaps in atomically without dropping in-flight streams; an invalid
one leaves the old configuration running; weights and rate limits survive unless the reload is forced."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ailb.control.generated import module_service_pb2 as pb
from tests.integration.conftest import GatewayFactory
from tests.integration.control_support import (
    MODEL,
    Control,
    Fakes,
    chat,
    config_yaml,
    gateway_env,
    served_by,
    started_fakes,
    stream_in_background,
)
from tests.integration.harness import RunningGateway


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with started_fakes(["blue", "green", "canary"]) as running:
        yield running


def subset(fakes: Fakes, *names: str) -> Fakes:
    return {name: fakes[name] for name in names}


@pytest.fixture
def gateway(run_gateway: GatewayFactory, fakes: Fakes) -> RunningGateway:
    return run_gateway(gateway_env(), config_yaml(subset(fakes, "blue", "green")))


def rewrite_config(gateway: RunningGateway, text: str) -> None:
    Path(gateway.env["AILB_CONFIG"]).write_text(text)


def test_reload_adds_a_deployment_without_dropping_an_in_flight_stream(
    control: Control, gateway: RunningGateway, fakes: Fakes
) -> None:
    assert control.weights(MODEL, blue=100, green=0).success
    fakes["blue"].server.reply = "the quick brown fox jumps over the lazy dog"
    fakes["blue"].server.stream_chunk_delay = 0.1
    try:
        reader, received = stream_in_background(gateway)
        before = time.time()
        rewrite_config(gateway, config_yaml(subset(fakes, "blue", "green", "canary")))
        reloaded = control.Reload(pb.ReloadRequest())
        reader.join(30)
    finally:
        fakes["blue"].server.reply = "Hello"
        fakes["blue"].server.stream_chunk_delay = 0.0

    assert reloaded.success, reloaded.message
    assert "canary" in reloaded.message
    assert reloaded.reload_timestamp >= int(before)
    assert received[0] == "blue"
    streamed = "".join(received[1:])
    assert "lazy" in streamed and "dog" in streamed
    assert streamed.rstrip().endswith("data: [DONE]"), "the stream finished on the old configuration"

    routes = control.GetRoutes(pb.RoutesRequest(cluster_id=MODEL))
    assert routes.version == 2
    assert sorted(routes.routes[0].hosts) == ["blue", "canary", "green"]
    assert control.GetStatus(pb.StatusRequest()).metadata["deployments_total"] == "3"
    assert control.weights(MODEL, canary=100, blue=0, green=0).success
    with httpx.Client(timeout=30) as http:
        assert served_by(http, gateway, 5) == {"canary": 5}


def test_an_invalid_config_keeps_the_old_one_running(control: Control, gateway: RunningGateway, fakes: Fakes) -> None:
    good = Path(gateway.env["AILB_CONFIG"]).read_text()
    rewrite_config(gateway, good.replace("provider: openai", "provider: not-a-provider", 1))
    refused = control.Reload(pb.ReloadRequest(force=True))
    assert not refused.success
    assert "provider" in refused.message
    assert refused.reload_timestamp == int(gateway.gateway.runtime.loaded_at)
    assert control.GetRoutes(pb.RoutesRequest()).version == 1
    with httpx.Client(timeout=30) as http:
        assert chat(http, gateway).status_code == 200

    rewrite_config(gateway, "deployments: [")
    broken = control.Reload(pb.ReloadRequest())
    assert not broken.success
    assert "YAML" in broken.message
    assert control.GetStatus(pb.StatusRequest()).metadata["deployments_total"] == "2"


def test_weights_and_rate_limits_survive_a_reload_unless_forced(control: Control, gateway: RunningGateway) -> None:
    assert control.weights(MODEL, blue=0, green=100).success
    assert control.rate_limit(MODEL, rps=50, burst=60).success

    kept = control.Reload(pb.ReloadRequest(force=False))
    assert kept.success, kept.message
    route = control.GetRoutes(pb.RoutesRequest(cluster_id=MODEL)).routes[0]
    assert route.rate_limit.enabled and route.rate_limit.burst_size == 60
    with httpx.Client(timeout=30) as http:
        assert served_by(http, gateway, 10) == {"green": 10}

    forced = control.Reload(pb.ReloadRequest(force=True))
    assert forced.success, forced.message
    routes = control.GetRoutes(pb.RoutesRequest(cluster_id=MODEL))
    assert routes.version == 3
    assert not routes.routes[0].rate_limit.enabled
    with httpx.Client(timeout=30) as http:
        assert set(served_by(http, gateway, 40)) == {"blue", "green"}
