"""Every ModuleService call over a real gRPC channel against the running gateway, failure cases included."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from ailb import __version__
from ailb.control.generated import module_service_pb2 as pb
from tests.fakes.script import Fault
from tests.integration.conftest import GatewayFactory
from tests.integration.control_support import (
    ALIAS,
    MODEL,
    Control,
    Fakes,
    chat,
    config_yaml,
    gateway_env,
    routing_stats,
    started_fakes,
)
from tests.integration.harness import RunningGateway


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with started_fakes(["blue", "green"]) as running:
        yield running


@pytest.fixture
def gateway(run_gateway: GatewayFactory, fakes: Fakes) -> RunningGateway:
    for fake in fakes.values():
        fake.server.clear_faults()
    return run_gateway(gateway_env(), config_yaml(fakes))


def test_get_status_reports_identity_and_health(control: Control, fakes: Fakes) -> None:
    calls_before = sum(f.server.chat_calls for f in fakes.values())
    status = control.GetStatus(pb.StatusRequest())
    assert status.module_id == "ailb-control-test"
    assert status.module_type == "AILB"
    assert status.version == __version__
    assert status.health == pb.HEALTHY
    assert status.uptime_seconds >= 0
    assert status.metadata["strategy"] == "random"
    assert status.metadata["deployments_up"] == "2"
    assert status.metadata["deployments_total"] == "2"
    assert status.metadata["memory"] == "disabled"
    assert status.metadata["rag"] == "disabled"
    assert sum(f.server.chat_calls for f in fakes.values()) == calls_before, "a status call never spends tokens"


def test_calls_need_the_admin_token_while_health_and_reflection_stay_open(gateway: RunningGateway) -> None:
    for token in (None, "wrong-token"):
        anonymous = Control(gateway, token=token)
        with pytest.raises(grpc.RpcError) as refused:
            anonymous.GetStatus(pb.StatusRequest())
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as refused:
            anonymous.Reload(pb.ReloadRequest())
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        anonymous.close()

    with grpc.insecure_channel(f"127.0.0.1:{gateway.gateway.grpc_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "marchproxy.ModuleService"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        assert {"marchproxy.ModuleService", "grpc.health.v1.Health"} <= services


def test_status_degrades_then_goes_unhealthy_as_deployments_fail(run_gateway: GatewayFactory, fakes: Fakes) -> None:
    env = gateway_env(CIRCUIT_FAILURE_THRESHOLD="1", CIRCUIT_COOLDOWN="600", ROUTER_MAX_ATTEMPTS="1")
    gateway = run_gateway(env, config_yaml(fakes))
    control = Control(gateway)
    try:
        fakes["blue"].server.fail_always(Fault.status(500))
        with httpx.Client(timeout=30) as http:
            for _ in range(40):
                chat(http, gateway)
                if control.GetStatus(pb.StatusRequest()).metadata["deployments_up"] == "1":
                    break
            status = control.GetStatus(pb.StatusRequest())
            assert status.health == pb.DEGRADED
            assert status.metadata["deployments_down"] == "blue"
            assert chat(http, gateway).status_code == 200, "green still serves"

            fakes["green"].server.fail_always(Fault.status(500))
            for _ in range(5):
                chat(http, gateway)
        status = control.GetStatus(pb.StatusRequest())
        assert status.health == pb.UNHEALTHY
        assert status.metadata["deployments_up"] == "0"
        with grpc.insecure_channel(f"127.0.0.1:{gateway.gateway.grpc_port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        control.close()
        for fake in fakes.values():
            fake.server.clear_faults()


def test_get_routes_lists_each_model_and_alias(control: Control) -> None:
    routes = control.GetRoutes(pb.RoutesRequest())
    assert routes.version == 1
    by_name = {route.name: route for route in routes.routes}
    assert set(by_name) == {MODEL, ALIAS}
    for name, route in by_name.items():
        assert route.prefix == "/v1/chat/completions"
        assert route.cluster_name == name
        assert sorted(route.hosts) == ["blue", "green"]
        assert route.enabled
        assert route.timeout_seconds > 0
        assert not route.rate_limit.enabled

    only = control.GetRoutes(pb.RoutesRequest(cluster_id=ALIAS))
    assert [route.name for route in only.routes] == [ALIAS]
    assert list(control.GetRoutes(pb.RoutesRequest(cluster_id="no-such-model")).routes) == []


def test_rate_limit_set_over_grpc_turns_requests_into_429(control: Control, gateway: RunningGateway) -> None:
    applied = control.rate_limit(MODEL, rps=1, burst=2)
    assert applied.success, applied.message
    route = control.GetRoutes(pb.RoutesRequest(cluster_id=MODEL)).routes[0]
    assert (route.rate_limit.requests_per_second, route.rate_limit.burst_size, route.rate_limit.enabled) == (1, 2, True)

    with httpx.Client(timeout=30) as http:
        statuses = [chat(http, gateway).status_code for _ in range(4)]
        assert statuses[:2] == [200, 200]
        assert 429 in statuses[2:]
        refused = chat(http, gateway)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert int(refused.headers["Retry-After"]) >= 1
        assert chat(http, gateway, ALIAS).status_code == 200, "a limit applies to the name clients use"

        removed = control.rate_limit(MODEL, 0, 0, enabled=False)
        assert removed.success, removed.message
        assert [chat(http, gateway).status_code for _ in range(3)] == [200, 200, 200]

        assert control.rate_limit("*", rps=1, burst=1).success
        assert chat(http, gateway, ALIAS).status_code == 200
        assert chat(http, gateway, MODEL).status_code == 429


@pytest.mark.parametrize(
    ("route", "rps", "burst", "enabled", "reason"),
    [
        (MODEL, -5, 10, True, "negative"),
        (MODEL, 5, 0, True, "burst_size"),
        ("no-such-model", 5, 10, True, "unknown route"),
    ],
)
def test_invalid_rate_limits_change_nothing(
    control: Control, route: str, rps: int, burst: int, enabled: bool, reason: str
) -> None:
    assert control.rate_limit(MODEL, rps=7, burst=9).success
    refused = control.rate_limit(route, rps, burst, enabled)
    assert not refused.success
    assert reason in refused.message
    missing = control.ApplyRateLimit(pb.RateLimitRequest(route_name=MODEL))
    assert not missing.success
    limit = control.GetRoutes(pb.RoutesRequest(cluster_id=MODEL)).routes[0].rate_limit
    assert (limit.requests_per_second, limit.burst_size, limit.enabled) == (7, 9, True)


def test_get_metrics_reports_real_figures(control: Control, gateway: RunningGateway, fakes: Fakes) -> None:
    # blue answers at once and green after 300 ms: the percentiles must show two populations.
    assert control.weights(MODEL, blue=100, green=0).success
    fakes["green"].server.latency = 0.3
    try:
        with httpx.Client(timeout=30) as http:
            assert all(chat(http, gateway).status_code == 200 for _ in range(18))
            assert control.weights(MODEL, blue=0, green=100).success
            assert all(chat(http, gateway).status_code == 200 for _ in range(2))
            assert chat(http, gateway, "no-such-model").status_code == 404
    finally:
        fakes["green"].server.latency = 0.0
    metrics = control.GetMetrics(pb.MetricsRequest())
    assert metrics.timestamp > 1_600_000_000
    assert metrics.total_requests == 21
    assert metrics.total_connections == 21
    assert metrics.active_connections == 0
    assert metrics.requests_per_second >= 1
    assert dict(metrics.status_codes) == {"200": 20, "404": 1}
    assert metrics.routes[MODEL].requests == 20
    assert metrics.routes[MODEL].errors == 0
    assert metrics.routes["other"].requests == 1
    latency = metrics.latency
    assert latency.p50_ms < 300 <= latency.p95_ms
    assert latency.p99_ms >= 300
    assert latency.p50_ms < latency.avg_ms < latency.p99_ms
    assert metrics.routes[MODEL].avg_latency_ms == pytest.approx(latency.avg_ms, rel=0.01)


@pytest.mark.parametrize(
    ("route", "weights", "reason"),
    [
        (MODEL, {"purple": 50}, "unknown backend"),
        (MODEL, {"blue": -1, "green": 50}, "between 0 and 100"),
        (MODEL, {"blue": 0, "green": 0}, "above 0"),
        ("no-such-model", {"blue": 50}, "unknown route"),
        (MODEL, {}, "no weights"),
    ],
)
def test_invalid_traffic_weights_change_nothing(
    control: Control, gateway: RunningGateway, route: str, weights: dict[str, int], reason: str
) -> None:
    assert control.weights(MODEL, blue=30, green=70).success
    with httpx.Client(timeout=10) as http:
        before = routing_stats(http, gateway)
    refused = control.weights(route, **weights)
    assert not refused.success
    assert reason in refused.message
    assert list(refused.applied_weights) == []
    with httpx.Client(timeout=10) as http:
        after = routing_stats(http, gateway)
    assert after.get("traffic_weights") == before.get("traffic_weights")
    assert gateway.call(_weights_of(gateway, MODEL)) == {"blue": 30, "green": 70}


async def _weights_of(gateway: RunningGateway, route: str) -> dict[str, int]:
    return gateway.gateway.runtime.router.traffic_weights(route)
