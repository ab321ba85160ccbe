"""The MarchProxy ``ModuleService``: status, routes, rate limits, metrics, traffic weights and reload.

The servicer holds the ``ControlPlane`` and reads its current runtime once per call, so it always acts on the
configuration running now, including after a reload. Calls that change something validate
first and change nothing when they answer ``success=false``.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

from ailb import __version__
from ailb.control.generated import module_service_pb2 as pb
from ailb.control.generated import module_service_pb2_grpc as pb_grpc
from ailb.control.weights import deployment_weights
from ailb.health import DEGRADED, OK, UNAVAILABLE, gateway_status
from ailb.routing.routes import GLOBAL_ROUTE
from ailb.state import SharedStateUnavailable

if TYPE_CHECKING:
    from ailb.control.ports import ControlPlane, ControlRuntime
    from ailb.settings import DeploymentConfig

log = logging.getLogger("ailb.control")
MODULE_TYPE = "AILB"
ROUTE_PREFIX = "/v1/chat/completions"
_HEALTH = {OK: pb.HEALTHY, DEGRADED: pb.DEGRADED, UNAVAILABLE: pb.UNHEALTHY}
SHARED_STATE_DOWN = (
    "the shared state (Redis) is unavailable, so the other instances cannot be told: nothing changed; "
    "try again when it is back"
)


class ModuleServicer(pb_grpc.ModuleServiceServicer):
    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    async def GetStatus(self, request: pb.StatusRequest, context: Any) -> pb.StatusResponse:
        runtime = self.plane.runtime
        health, metadata = module_health(runtime, self.plane.routes_version)
        return pb.StatusResponse(
            module_id=runtime.settings.module_id,
            module_type=MODULE_TYPE,
            version=__version__,
            health=health,
            uptime_seconds=int(time.time() - runtime.started_at),
            metadata=metadata,
        )

    async def GetRoutes(self, request: pb.RoutesRequest, context: Any) -> pb.RoutesResponse:
        runtime = self.plane.runtime
        routes = [
            route_config(runtime, name, hosts)
            for name, hosts in sorted(runtime.router.public_models().items())
            if not request.cluster_id or name == request.cluster_id
        ]
        return pb.RoutesResponse(routes=routes, version=self.plane.routes_version)

    async def ApplyRateLimit(self, request: pb.RateLimitRequest, context: Any) -> pb.RateLimitResponse:
        if not request.route_name:
            return pb.RateLimitResponse(success=False, message="route_name is required (a model name or '*')")
        if not request.HasField("config"):
            return pb.RateLimitResponse(success=False, message="config is required")
        config = request.config
        runtime = self.plane.runtime
        try:
            limit = runtime.rate_limits.validate(
                request.route_name, config.requests_per_second, config.burst_size, config.enabled
            )
            await runtime.control.set_limit(
                request.route_name, None if limit is None else (limit.requests_per_second, limit.burst_size)
            )
        except ValueError as exc:
            return pb.RateLimitResponse(success=False, message=str(exc))
        except SharedStateUnavailable:
            return pb.RateLimitResponse(success=False, message=SHARED_STATE_DOWN)
        if config.enabled:
            message = (
                f"rate limit on {request.route_name!r}: {config.requests_per_second} requests/s, "
                f"burst {config.burst_size}"
            )
        else:
            message = f"rate limit on {request.route_name!r} removed"
        log.info("control: %s", message)
        return pb.RateLimitResponse(success=True, message=message)

    async def GetMetrics(self, request: pb.MetricsRequest, context: Any) -> pb.MetricsResponse:
        snapshot = self.plane.runtime.metrics.snapshot()
        latency = snapshot.latency
        return pb.MetricsResponse(
            timestamp=snapshot.timestamp,
            # AILB sees HTTP requests, not TCP connections (keep-alive hides them): each request counts as one.
            total_connections=snapshot.total_requests,
            active_connections=snapshot.active_requests,
            total_requests=snapshot.total_requests,
            requests_per_second=round(snapshot.requests_per_second),
            latency=pb.LatencyMetrics(
                p50_ms=latency.p50_ms,
                p90_ms=latency.p90_ms,
                p95_ms=latency.p95_ms,
                p99_ms=latency.p99_ms,
                avg_ms=latency.avg_ms,
            ),
            status_codes=snapshot.status_codes,
            routes={
                name: pb.RouteMetrics(requests=r.requests, errors=r.errors, avg_latency_ms=r.avg_latency_ms)
                for name, r in snapshot.routes.items()
            },
        )

    async def SetTrafficWeight(self, request: pb.TrafficWeightRequest, context: Any) -> pb.TrafficWeightResponse:
        route = request.route_name
        runtime = self.plane.runtime
        try:
            candidates = route_deployments(runtime, route)
            weights = deployment_weights(route, ((w.backend_name, w.weight) for w in request.weights), candidates)
            applied = runtime.router.check_traffic_weights(route, weights)
            await runtime.control.set_weights(route, applied)
        except ValueError as exc:
            return pb.TrafficWeightResponse(success=False, message=str(exc))
        except SharedStateUnavailable:
            return pb.TrafficWeightResponse(success=False, message=SHARED_STATE_DOWN)
        message = f"traffic weights on {route!r}: " + ", ".join(f"{n}={w}" for n, w in sorted(applied.items()))
        log.info("control: %s", message)
        return pb.TrafficWeightResponse(
            success=True,
            message=message,
            applied_weights=[pb.TrafficWeight(backend_name=n, weight=w) for n, w in sorted(applied.items())],
        )

    async def Reload(self, request: pb.ReloadRequest, context: Any) -> pb.ReloadResponse:
        success, message = await self.plane.reload(request.force)
        # On failure this is when the configuration still running was loaded.
        loaded_at = self.plane.runtime.loaded_at
        return pb.ReloadResponse(success=success, message=message, reload_timestamp=int(loaded_at))


def module_health(runtime: ControlRuntime, routes_version: int) -> tuple[pb.HealthStatus, dict[str, str]]:
    """HEALTHY: every deployment up and the enabled stores working; DEGRADED: something is down but models
    can still be served; UNHEALTHY: no model can be served. Reads state only: never calls a model."""
    deployments = list(runtime.router.deployments)
    up = [d.name for d in deployments if d.up]
    memory = runtime.memory.status() if runtime.memory is not None else "disabled"
    rag = runtime.rag.status() if runtime.rag is not None else "disabled"
    shared = runtime.shared.status()
    health = _HEALTH[gateway_status(runtime.router.health()["status"], memory, rag, shared)]
    metadata = {
        "strategy": runtime.settings.routing_strategy,
        "deployments_up": str(len(up)),
        "deployments_total": str(len(deployments)),
        "deployments_down": ",".join(d.name for d in deployments if not d.up),
        "models": str(len(runtime.router.public_models())),
        "memory": memory,
        "rag": rag,
        "shared_state": shared,
        "routes_version": str(routes_version),
    }
    return health, metadata


def route_config(runtime: ControlRuntime, name: str, hosts: list[str]) -> pb.RouteConfig:
    configs = [c for c in (runtime.settings.deployment(h) for h in hosts) if c is not None]
    weights = runtime.router.traffic_weights(name)
    limit = runtime.rate_limits.config(name)
    return pb.RouteConfig(
        name=name,
        prefix=ROUTE_PREFIX,
        cluster_name=name,
        hosts=hosts,
        timeout_seconds=route_timeout(runtime, configs),
        enabled=any(c.weight > 0 and weights.get(c.name, 0) > 0 for c in configs),
        rate_limit=pb.RateLimitConfig(
            requests_per_second=limit.requests_per_second if limit else 0,
            burst_size=limit.burst_size if limit else 0,
            enabled=limit is not None,
        ),
    )


def route_timeout(runtime: ControlRuntime, configs: list[DeploymentConfig]) -> int:
    """The longest a request to the route may take: the slowest deployment's total timeout, capped by the
    router's deadline for the whole request (retries included)."""
    deadline = runtime.settings.router.deadline
    return math.ceil(min(max((c.timeouts.total for c in configs), default=deadline), deadline))


def route_deployments(runtime: ControlRuntime, route: str) -> list[DeploymentConfig]:
    settings = runtime.settings
    if route == GLOBAL_ROUTE:
        return list(settings.deployments)
    served = runtime.router.public_models()
    if route not in served:
        raise ValueError(f"unknown route {route!r}: use a served model name or '*'")
    return [c for c in (settings.deployment(name) for name in served[route]) if c is not None]
