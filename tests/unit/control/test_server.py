from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ailb.bootstrap import Gateway
from ailb.control.generated import module_service_pb2 as pb
from ailb.control.generated import module_service_pb2_grpc as pb_grpc
from ailb.control.server import start_grpc, stop_grpc
from ailb.settings import ConfigError, DeploymentConfig, MemoryConfig, Settings


def settings() -> Settings:
    deployment = DeploymentConfig(
        name="local", provider="openai", base_url="http://127.0.0.1:9/v1", api_key="sk-unused-0000", models=("m",)
    )
    return Settings(deployments=(deployment,), memory=MemoryConfig(enabled=False), module_id="unit-module")


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[Gateway]:
    gateway = Gateway(settings())
    yield gateway
    await gateway.aclose()


async def test_serves_module_service_and_health_then_stops_with_grace(gateway: Gateway) -> None:
    server, port = await start_grpc(gateway, "127.0.0.1", 0)
    assert port > 0
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        status = await pb_grpc.ModuleServiceStub(channel).GetStatus(pb.StatusRequest(), timeout=5)
        assert status.module_id == "unit-module"
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        first = await asyncio.wait_for(watch.read(), 5)
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        stopping = asyncio.create_task(stop_grpc(server, grace=2))
        update = await asyncio.wait_for(watch.read(), 5)
        assert update.status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()
        await stopping


async def test_an_address_it_cannot_bind_is_a_config_error(gateway: Gateway) -> None:
    with pytest.raises(ConfigError) as failed:
        await start_grpc(gateway, "256.0.0.1", 0)
    assert failed.value.key == "GRPC_PORT"


async def test_a_second_server_on_the_same_port_is_refused(gateway: Gateway) -> None:
    server, port = await start_grpc(gateway, "127.0.0.1", 0)
    other = Gateway(settings())
    try:
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}: the port is in use") as failed:
            await start_grpc(other, "127.0.0.1", port)  # gRPC's default SO_REUSEPORT would have shared it
        assert failed.value.key == "GRPC_PORT"
    finally:
        await other.aclose()
        await stop_grpc(server, grace=0)
