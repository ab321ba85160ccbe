"""Strategies that share traffic in proportion to weight: smooth round robin and weighted random."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ailb.routing.deployment import Candidate
from ailb.routing.strategies.base import RouteRequest, StrategyContext


class RoundRobin:
    """Smooth weighted round robin (as in nginx), with separate rotation state per requested model.

    Each pick adds every candidate's weight to its running score, takes the highest score and
    subtracts the total weight from the winner: 3:1 weights give a, a, b, a, a, a, b, a, ...
    """

    name: ClassVar[str] = "round_robin"
    needs_prompt_tokens: ClassVar[bool] = False

    def __init__(self, context: StrategyContext) -> None:
        self._scores: dict[str, dict[str, float]] = {}

    def choose(self, candidates: Sequence[Candidate], request: RouteRequest) -> Candidate:
        scores = self._scores.setdefault(request.route, {})
        total = 0.0
        best = candidates[0]
        best_score = float("-inf")
        for candidate in candidates:
            score = scores.get(candidate.name, 0.0) + candidate.weight
            scores[candidate.name] = score
            total += candidate.weight
            if score > best_score:
                best, best_score = candidate, score
        scores[best.name] = best_score - total
        return best


class WeightedRandom:
    name: ClassVar[str] = "random"
    needs_prompt_tokens: ClassVar[bool] = False

    def __init__(self, context: StrategyContext) -> None:
        self._rng = context.rng

    def choose(self, candidates: Sequence[Candidate], request: RouteRequest) -> Candidate:
        return self._rng.choices(candidates, weights=[c.weight for c in candidates])[0]
