from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from ailb.control.auth import AdminTokenInterceptor
from ailb.control.generated import module_service_pb2 as pb
from ailb.control.generated import module_service_pb2_grpc as pb_grpc
from ailb.tenancy import KeyRing


class StatusOnly(pb_grpc.ModuleServiceServicer):  # type: ignore[misc]
    async def GetStatus(self, request: pb.StatusRequest, context: Any) -> pb.StatusResponse:
        return pb.StatusResponse(module_id="probe")


class Token:
    value = "admin-secret"

    def __call__(self) -> str:
        return self.value


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[grpc.aio.Channel, Token]]:
    token = Token()
    server = grpc.aio.server(interceptors=[AdminTokenInterceptor(token)])
    pb_grpc.add_ModuleServiceServicer_to_server(StatusOnly(), server)
    health_pb2_grpc.add_HealthServicer_to_server(health_aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield channel, token
    await channel.close()
    await server.stop(0)


async def status_code(stub: Any, metadata: tuple[tuple[str, str], ...] | None) -> grpc.StatusCode:
    try:
        await stub.GetStatus(pb.StatusRequest(), metadata=metadata, timeout=5)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_module_service_needs_the_bearer_token(served: tuple[grpc.aio.Channel, Token]) -> None:
    channel, _ = served
    stub = pb_grpc.ModuleServiceStub(channel)
    assert await status_code(stub, None) == grpc.StatusCode.UNAUTHENTICATED
    assert await status_code(stub, (("authorization", "Bearer wrong"),)) == grpc.StatusCode.UNAUTHENTICATED
    assert await status_code(stub, (("authorization", "admin-secret"),)) == grpc.StatusCode.UNAUTHENTICATED
    assert await status_code(stub, (("authorization", "Bearer admin-secret"),)) == grpc.StatusCode.OK


async def test_the_standard_health_service_stays_open(served: tuple[grpc.aio.Channel, Token]) -> None:
    channel, _ = served
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_the_token_is_read_on_every_call(served: tuple[grpc.aio.Channel, Token]) -> None:
    channel, holder = served
    stub = pb_grpc.ModuleServiceStub(channel)
    holder.value = "rotated"
    assert await status_code(stub, (("authorization", "Bearer admin-secret"),)) == grpc.StatusCode.UNAUTHENTICATED
    assert await status_code(stub, (("authorization", "Bearer rotated"),)) == grpc.StatusCode.OK
    holder.value = ""  # no admin token configured: open
    assert await status_code(stub, None) == grpc.StatusCode.OK


async def test_without_an_admin_token_the_client_keys_guard_the_module_service() -> None:
    server = grpc.aio.server(interceptors=[AdminTokenInterceptor(lambda: "", fallback=KeyRing(["client-key"]).accepts)])
    pb_grpc.add_ModuleServiceServicer_to_server(StatusOnly(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        stub = pb_grpc.ModuleServiceStub(channel)
        assert await status_code(stub, None) == grpc.StatusCode.UNAUTHENTICATED
        assert await status_code(stub, (("authorization", "Bearer wrong"),)) == grpc.StatusCode.UNAUTHENTICATED
        assert await status_code(stub, (("authorization", "Bearer client-key"),)) == grpc.StatusCode.OK
    finally:
        await channel.close()
        await server.stop(0)
    assert KeyRing([]).accepts(None)  # no keys configured at all: open, as on HTTP
