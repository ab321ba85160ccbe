from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest_asyncio

from ailb.bootstrap import Gateway
from ailb.control.generated import module_service_pb2 as pb
from ailb.control.servicer import module_health, route_timeout
from ailb.settings import DeploymentConfig, MemoryConfig, RouterConfig, Settings, Timeouts


def deployment(name: str, total: float = 600.0) -> DeploymentConfig:
    return DeploymentConfig(
        name=name,
        provider="openai",
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-unused-0000",
        models=("m",),
        timeouts=Timeouts(total=total),
    )


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[Gateway]:
    settings = Settings(
        deployments=(deployment("a", 30.5), deployment("b", 90)),
        memory=MemoryConfig(enabled=False),
        router=RouterConfig(deadline=60),
    )
    gateway = Gateway(settings)
    yield gateway
    await gateway.aclose()


class StoreState:
    def __init__(self, state: str) -> None:
        self.state = state

    def status(self) -> str:
        return self.state

    async def aclose(self) -> None:
        self.state = "closed"


def trip(gateway: Gateway, name: str) -> None:
    deployment = next(d for d in gateway.runtime.router.deployments if d.name == name)
    deployment.circuit.trip(probe=False)
    assert not deployment.up


async def test_healthy_degraded_unhealthy(gateway: Gateway) -> None:
    health, metadata = module_health(gateway.runtime, gateway.routes_version)
    assert health == pb.HEALTHY
    assert metadata["deployments_up"] == "2"
    assert metadata["deployments_down"] == ""

    trip(gateway, "a")
    health, metadata = module_health(gateway.runtime, gateway.routes_version)
    assert health == pb.DEGRADED
    assert metadata["deployments_down"] == "a"

    trip(gateway, "b")
    assert module_health(gateway.runtime, gateway.routes_version)[0] == pb.UNHEALTHY


async def test_a_store_that_is_down_or_loading_degrades(gateway: Gateway) -> None:
    for state in ("degraded", "loading"):
        gateway.runtime = replace(gateway.runtime, memory=StoreState(state))  # type: ignore[arg-type]
        health, metadata = module_health(gateway.runtime, gateway.routes_version)
        assert health == pb.DEGRADED
        assert metadata["memory"] == state
    gateway.runtime = replace(gateway.runtime, memory=StoreState("ok"), rag=StoreState("ok"))  # type: ignore[arg-type]
    assert module_health(gateway.runtime, gateway.routes_version)[0] == pb.HEALTHY


async def test_route_timeout_is_the_slowest_deployment_capped_by_the_deadline(gateway: Gateway) -> None:
    assert route_timeout(gateway.runtime, [deployment("x", 30.5)]) == 31
    assert route_timeout(gateway.runtime, [deployment("x", 30.5), deployment("y", 90)]) == 60
    assert route_timeout(gateway.runtime, []) == 60
