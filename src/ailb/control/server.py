"""The gRPC server: ModuleService, the standard ``grpc.health.v1.Health`` service and server reflection.

It runs on the gateway's own event loop (``grpc.aio``). The health service answers SERVING unless no model
can be served (``UNHEALTHY`` in ``GetStatus``), for the whole server (``""``) and for
``marchproxy.ModuleService``; it is refreshed on every health check and every few seconds for watchers.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import SERVICE_NAME as HEALTH_SERVICE
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from ailb.control.auth import AdminTokenInterceptor
from ailb.control.generated import module_service_pb2 as pb
from ailb.control.generated import module_service_pb2_grpc as pb_grpc
from ailb.control.servicer import ModuleServicer, module_health
from ailb.settings import ConfigError

if TYPE_CHECKING:
    from ailb.control.ports import ControlPlane

log = logging.getLogger("ailb.control")
MODULE_SERVICE = pb.DESCRIPTOR.services_by_name["ModuleService"].full_name
HEALTH_REFRESH_SECONDS = 5.0


class GatewayHealth(health_aio.HealthServicer):  # type: ignore[misc]
    def __init__(self, plane: ControlPlane) -> None:
        super().__init__()
        self.plane = plane
        self.keeper: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        serving = module_health(self.plane.runtime, self.plane.routes_version)[0] != pb.UNHEALTHY
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", MODULE_SERVICE):
            await self.set(service, status)

    async def Check(self, request: Any, context: Any) -> Any:
        await self.refresh()
        return await super().Check(request, context)


_health_of: weakref.WeakKeyDictionary[Any, GatewayHealth] = weakref.WeakKeyDictionary()


async def start_grpc(plane: ControlPlane, host: str, port: int, *, reuse_port: bool = False) -> tuple[Any, int]:
    """Start serving; returns the ``grpc.aio.Server`` and the port it bound (useful with ``port=0``).

    ``reuse_port``: a worker of ``ailb serve --workers``, binding the port with its sibling workers."""
    interceptor = AdminTokenInterceptor(
        lambda: plane.runtime.settings.admin_token, fallback=lambda key: plane.runtime.keys.accepts(key)
    )
    # gRPC lets any process share a port by default (SO_REUSEPORT), so a second AILB would silently take half
    # of the control calls: ports are shared only by deliberate workers of one AILB (``reuse_port``).
    options = [("grpc.so_reuseport", 1 if reuse_port else 0)]
    server = grpc.aio.server(interceptors=[interceptor], options=options)
    pb_grpc.add_ModuleServiceServicer_to_server(ModuleServicer(plane), server)  # type: ignore[no-untyped-call]
    health = GatewayHealth(plane)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection((MODULE_SERVICE, HEALTH_SERVICE, reflection.SERVICE_NAME), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ConfigError(
            "GRPC_PORT", f"cannot listen for gRPC on {address}: the port is in use (another AILB?) or not allowed"
        ) from exc
    await server.start()
    await health.refresh()
    health.keeper = asyncio.create_task(_keep_health_current(server, health), name="ailb-grpc-health")
    _health_of[server] = health
    log.info("gRPC control plane listening on %s", f"{host}:{bound}")
    return server, bound


async def stop_grpc(server: Any, grace: float) -> None:
    """Tell health watchers NOT_SERVING, then stop, letting calls in progress finish within ``grace`` seconds."""
    health = _health_of.pop(server, None)
    if health is not None:
        await health.enter_graceful_shutdown()
    await server.stop(grace)


async def _keep_health_current(server: Any, health: GatewayHealth) -> None:
    # wait_for_termination returns True when it timed out, i.e. the server is still running.
    while await server.wait_for_termination(timeout=HEALTH_REFRESH_SECONDS):
        await health.refresh()
