"""Routing strategies, looked up by name.

Each strategy is one small class implementing ``Strategy.choose(candidates, request)``. Adding one means
writing the class and listing it in ``STRATEGIES``; nothing else dispatches on strategy names.
"""

from __future__ import annotations

from ailb.routing.strategies.base import RouteRequest, Strategy, StrategyContext, StrategyFactory
from ailb.routing.strategies.cost import CostOptimized
from ailb.routing.strategies.failover import Failover
from ailb.routing.strategies.latency import LatencyOptimized
from ailb.routing.strategies.load import LoadBalanced
from ailb.routing.strategies.weighted import RoundRobin, WeightedRandom

STRATEGIES: dict[str, StrategyFactory] = {
    cls.name: cls for cls in (RoundRobin, WeightedRandom, LatencyOptimized, CostOptimized, LoadBalanced, Failover)
}


def normalize_strategy(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def validate_strategy(name: str) -> str:
    """The registered name for ``name``; ``ValueError`` naming the choices if there is none."""
    key = normalize_strategy(name)
    if key not in STRATEGIES:
        raise ValueError(f"unknown routing strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    return key


def build_strategies(context: StrategyContext) -> dict[str, Strategy]:
    return {name: factory(context) for name, factory in STRATEGIES.items()}


__all__ = [
    "STRATEGIES",
    "RouteRequest",
    "Strategy",
    "StrategyContext",
    "build_strategies",
    "normalize_strategy",
    "validate_strategy",
]
