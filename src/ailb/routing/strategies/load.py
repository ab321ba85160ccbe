"""Fewest requests in flight relative to weight."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ailb.routing.deployment import Candidate
from ailb.routing.strategies.base import RouteRequest, StrategyContext, latency_or_none, lowest


class LoadBalanced:
    """``in_flight / weight``, lowest first; ties go to the lower expected latency, then to chance."""

    name: ClassVar[str] = "load_balanced"
    needs_prompt_tokens: ClassVar[bool] = False

    def __init__(self, context: StrategyContext) -> None:
        self._rng = context.rng

    def choose(self, candidates: Sequence[Candidate], request: RouteRequest) -> Candidate:
        return lowest(
            candidates,
            lambda c: (c.deployment.in_flight / c.weight, latency_or_none(c, request) or 0.0),
            self._rng,
        )
