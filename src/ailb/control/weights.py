"""Turns a ``SetTrafficWeight`` request into per-deployment weights for the router.

A backend is a deployment name or a deployment ``version`` label from the config (blue/green roll-outs:
deployments tagged ``version: blue`` and ``version: green``); a label stands for every deployment of the
route that carries it. A deployment name wins over a label of the same spelling.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ailb.routing.weights import MAX_WEIGHT
from ailb.settings import DeploymentConfig


def deployment_weights(
    route: str, requested: Iterable[tuple[str, int]], candidates: Sequence[DeploymentConfig]
) -> dict[str, int]:
    """``candidates`` are the deployments serving ``route``. Raises ``ValueError(reason)`` on bad input."""
    requested = list(requested)
    if not requested:
        raise ValueError("no weights given")
    by_name = {d.name: d for d in candidates}
    weights: dict[str, int] = {}
    seen_backends: set[str] = set()
    for backend, weight in requested:
        if backend in seen_backends:
            raise ValueError(f"backend {backend!r} is listed twice")
        seen_backends.add(backend)
        if not 0 <= weight <= MAX_WEIGHT:
            raise ValueError(f"weight of {backend!r} must be between 0 and {MAX_WEIGHT}, got {weight}")
        for name in _backend_deployments(route, backend, by_name, candidates):
            if name in weights:
                raise ValueError(f"deployment {name!r} is named twice (by name and by version label)")
            weights[name] = weight
    if not any(weights.values()):
        raise ValueError("at least one backend needs a weight above 0")
    return weights


def _backend_deployments(
    route: str, backend: str, by_name: dict[str, DeploymentConfig], candidates: Sequence[DeploymentConfig]
) -> list[str]:
    if backend in by_name:
        return [backend]
    labelled = [d.name for d in candidates if d.version and d.version == backend]
    if not labelled:
        raise ValueError(f"unknown backend {backend!r} for route {route!r}: not a deployment name or version label")
    return labelled
