"""The router's state as plain dicts: ``GET /api/routing/stats`` and the deployments part of ``/healthz``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ailb.routing.deployment import Deployment
from ailb.routing.routes import GLOBAL_ROUTE
from ailb.routing.stats import DecayingAverage, RecentWindow
from ailb.routing.weights import TrafficWeights


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def _timing(average: DecayingAverage, window: RecentWindow, now: float) -> dict[str, float | None]:
    return {
        "ewma_ms": _ms(average.raw()),
        "p50_ms": _ms(window.percentile(0.50, now)),
        "p95_ms": _ms(window.percentile(0.95, now)),
    }


def deployment_stats(deployment: Deployment, weights: TrafficWeights, now: float) -> dict[str, Any]:
    config, stats, circuit = deployment.config, deployment.stats, deployment.circuit
    traffic = round(weights.factor(GLOBAL_ROUTE, deployment.name) * 100)
    last_error = None
    if stats.last_error:
        ago = None if stats.last_error_at is None else round(max(0.0, now - stats.last_error_at), 3)
        last_error = {"message": stats.last_error, "seconds_ago": ago}
    return {
        "provider": config.provider,
        "version": config.version,
        "models": list(deployment.models),
        "up": deployment.up,
        "requests": stats.requests,
        "successes": stats.successes,
        "failures": stats.failures,
        "client_errors": stats.client_errors,
        "in_flight": deployment.in_flight,
        "max_concurrency": config.max_concurrency,
        "latency": _timing(stats.latency, stats.latency_window, now),
        "ttft": _timing(stats.ttft, stats.ttft_window, now),
        "tokens": {"input": stats.prompt_tokens, "output": stats.completion_tokens},
        "cache_tokens": {"read": stats.cache_read_tokens, "write": stats.cache_write_tokens},
        "cost_usd": round(stats.cost_usd, 8),
        "circuit": {
            "state": circuit.state,
            "retry_in_seconds": round(circuit.retry_in(), 3),
            "consecutive_failures": circuit.consecutive_failures,
            "cooldown_seconds": circuit.cooldown,
        },
        "weight": {"config": config.weight, "traffic": traffic, "effective": config.weight * traffic / 100},
        "priority": config.priority,
        "misconfigured": deployment.misconfigured_status is not None,
        "last_error": last_error,
    }


def deployment_health(deployment: Deployment) -> dict[str, Any]:
    return {
        "up": deployment.up,
        "provider": deployment.config.provider,
        "circuit": deployment.circuit.state,
        "misconfigured": deployment.misconfigured_status is not None,
        "retry_in_seconds": round(deployment.circuit.retry_in(), 3),
        "models": len(deployment.models),
        "in_flight": deployment.in_flight,
    }


def overall_status(deployments: Sequence[Deployment]) -> str:
    """ok: every deployment up and serving; degraded: some are; unavailable: none is."""
    serving = [d for d in deployments if d.up and d.models]
    if not serving:
        return "unavailable"
    return "ok" if len(serving) == len(deployments) else "degraded"
