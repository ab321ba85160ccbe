"""Cheapest expected cost of this very request."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from ailb.routing.deployment import Candidate
from ailb.routing.strategies.base import RouteRequest, StrategyContext, loaded_latency, lowest

# Completion length assumed for a deployment that has not answered yet and a request without max_tokens.
DEFAULT_COMPLETION_TOKENS = 256.0


class CostOptimized:
    """prompt tokens × input price + expected completion tokens × output price; ties go to lower latency.

    Expected completion tokens are the request's ``max_tokens`` when given, else the deployment's observed
    average. The prompt is priced with the deployment's observed shares of prompt-cache reads and writes at
    their own rates. A deployment whose price is unknown ranks after every deployment with a known price.
    """

    name: ClassVar[str] = "cost_optimized"
    needs_prompt_tokens: ClassVar[bool] = True

    def __init__(self, context: StrategyContext) -> None:
        self._context = context

    def expected_cost(self, candidate: Candidate, request: RouteRequest) -> float:
        price = self._context.prices.price(candidate.deployment.config, candidate.model)
        if price is None:
            return math.inf
        prompt = self._context.tokens.calibrated(candidate.model, request.prompt_tokens or 0)
        if request.max_tokens is not None:
            completion = float(request.max_tokens)
        else:
            completion = candidate.deployment.stats.expected_completion_tokens() or DEFAULT_COMPLETION_TOKENS
        return price.expected_cost(prompt, completion, *candidate.deployment.stats.expected_cache_shares())

    def choose(self, candidates: Sequence[Candidate], request: RouteRequest) -> Candidate:
        return lowest(
            candidates,
            lambda c: (self.expected_cost(c, request), loaded_latency(c, request)),
            self._context.rng,
        )
