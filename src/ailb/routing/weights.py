"""Traffic weight overrides (0-100) per route, set at run time by the control plane.

A route is the model name a client asks for, or ``*`` for every request. A deployment's effective weight
for a request is its configured ``weight`` × override / 100, where the override comes from the request's
route if set there, else from ``*``, else 100. Weight 0 drains a deployment: no new requests, in-flight
ones finish. Every change is validated whole and swapped in with one assignment.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from ailb.routing.routes import GLOBAL_ROUTE

MAX_WEIGHT = 100


class TrafficWeights:
    def __init__(self) -> None:
        self._routes: Mapping[str, Mapping[str, int]] = MappingProxyType({})

    @property
    def overridden(self) -> bool:
        """Whether any override is set (without one every factor is 1.0)."""
        return bool(self._routes)

    def factor(self, route: str, deployment: str) -> float:
        """The override for ``deployment`` on ``route`` as a fraction (1.0 when none is set)."""
        routes = self._routes
        if not routes:
            return 1.0
        for key in (route, GLOBAL_ROUTE):
            weights = routes.get(key)
            if weights is not None and deployment in weights:
                return weights[deployment] / MAX_WEIGHT
        return 1.0

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {route: dict(weights) for route, weights in self._routes.items()}

    def apply(self, route: str, weights: Mapping[str, object], serving: Mapping[str, float]) -> dict[str, int]:
        """Replace the overrides of ``route`` with ``weights``; deployments not named keep inheriting.

        ``serving`` maps each deployment that serves the route to its configured weight. Raises
        ``ValueError`` and changes nothing for no weights, an unknown deployment, a weight that is not a whole
        number from 0 to 100, all weights 0, or a change that would leave the route without traffic.
        """
        applied = self.check(route, weights, serving)
        self._routes = MappingProxyType({**self._routes, route: MappingProxyType(applied)})
        return dict(applied)

    def check(self, route: str, weights: Mapping[str, object], serving: Mapping[str, float]) -> dict[str, int]:
        """What ``apply`` would set, validated as ``apply`` does, without setting it."""
        applied = validated(route, weights, serving)
        if not any(applied.values()):
            raise ValueError("at least one deployment needs a weight above 0")
        remaining = [
            config_weight * (applied[name] if name in applied else self._inherited(route, name))
            for name, config_weight in serving.items()
        ]
        if not any(value > 0 for value in remaining):
            raise ValueError(f"these weights would leave no deployment serving {route!r} with traffic")
        return applied

    def replace(
        self, routes: Mapping[str, Mapping[str, int]], deployments: Iterable[str], known: Iterable[str]
    ) -> None:
        """Put the overrides the control state holds in force, keeping those for ``deployments`` and routes
        ``known`` here (another instance may serve more)."""
        self._routes = MappingProxyType({route: MappingProxyType(dict(w)) for route, w in routes.items()})
        self.keep(deployments, known)

    def in_force(self, route: str, deployments: Iterable[str]) -> dict[str, int]:
        """The override (0-100) each of ``deployments`` gets on ``route``; 100 where none is set."""
        return {name: round(self.factor(route, name) * MAX_WEIGHT) for name in deployments}

    def keep(self, deployments: Iterable[str], routes: Iterable[str]) -> None:
        """Drop overrides for deployments or routes that no longer exist (after a reload)."""
        names, known_routes = set(deployments), {*routes, GLOBAL_ROUTE}
        kept = {
            route: MappingProxyType({name: w for name, w in weights.items() if name in names})
            for route, weights in self._routes.items()
            if route in known_routes
        }
        self._routes = MappingProxyType({route: weights for route, weights in kept.items() if weights})

    def adopt(self, other: TrafficWeights) -> None:
        self._routes = other._routes

    def _inherited(self, route: str, deployment: str) -> float:
        if route == GLOBAL_ROUTE:
            return MAX_WEIGHT
        fallback = self._routes.get(GLOBAL_ROUTE, {})
        return fallback.get(deployment, MAX_WEIGHT)


def validated(route: str, weights: Mapping[str, object], serving: Mapping[str, float]) -> dict[str, int]:
    if not weights:
        raise ValueError("no weights given")
    applied: dict[str, int] = {}
    for name, weight in weights.items():
        if name not in serving:
            raise ValueError(f"no deployment named {name!r} serves route {route!r}")
        whole = _whole_number(weight)
        if whole is None or not 0 <= whole <= MAX_WEIGHT:
            raise ValueError(f"weight of {name!r} must be a whole number from 0 to {MAX_WEIGHT}, got {weight!r}")
        applied[name] = whole
    return applied


def _whole_number(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value != int(value):
        return None
    return int(value)
