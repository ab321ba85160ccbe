"""Strict priority order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ailb.routing.deployment import Candidate
from ailb.routing.strategies.base import RouteRequest, StrategyContext


class Failover:
    """The lowest ``priority`` value that can serve, first in configuration order among equals.

    A deployment further down is used only while those before it cannot serve (circuit open, at its
    concurrency limit, drained, or already tried for this request).
    """

    name: ClassVar[str] = "failover"
    needs_prompt_tokens: ClassVar[bool] = False

    def __init__(self, context: StrategyContext) -> None:
        pass

    def choose(self, candidates: Sequence[Candidate], request: RouteRequest) -> Candidate:
        return min(candidates, key=lambda c: c.deployment.config.priority)
