"""Lowest expected latency from live measurements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ailb.routing.deployment import Candidate
from ailb.routing.strategies.base import RouteRequest, StrategyContext, latency_or_none, loaded_latency, lowest


class LatencyOptimized:
    """Time to first token for streams, whole-answer latency otherwise, each a time-decaying EWMA.

    The estimate is multiplied by ``1 + requests in flight`` there, so the fastest deployment is not
    flooded. A deployment never measured (for this kind of request) is tried first, one request at a time.
    """

    name: ClassVar[str] = "latency_optimized"
    needs_prompt_tokens: ClassVar[bool] = False

    def __init__(self, context: StrategyContext) -> None:
        self._rng = context.rng

    def choose(self, candidates: Sequence[Candidate], request: RouteRequest) -> Candidate:
        unmeasured = [c for c in candidates if latency_or_none(c, request) is None]
        idle_unmeasured = [c for c in unmeasured if c.deployment.in_flight == 0]
        if idle_unmeasured:
            return lowest(idle_unmeasured, lambda c: 0.0, self._rng)
        measured = [c for c in candidates if latency_or_none(c, request) is not None]
        if not measured:
            return lowest(unmeasured, lambda c: float(c.deployment.in_flight), self._rng)
        return lowest(measured, lambda c: loaded_latency(c, request), self._rng)
