"""The one interface every routing strategy implements, and the helpers they share."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeVar

from ailb.routing.deployment import Candidate
from ailb.routing.pricing import PriceBook
from ailb.routing.tokens import TokenCounter

Key = TypeVar("Key", float, tuple[float, ...])


@dataclass(frozen=True, slots=True)
class StrategyContext:
    """What strategies may use besides the candidates: randomness, prices and the prompt token counter."""

    rng: random.Random
    prices: PriceBook
    tokens: TokenCounter


@dataclass(slots=True)
class RouteRequest:
    """The facts about one request that strategies weigh."""

    route: str  # the model name the client asked for (a model or an alias)
    stream: bool
    max_tokens: int | None
    now: float
    prompt_tokens: int | None = None  # counted for strategies that set ``needs_prompt_tokens``, or given


class Strategy(Protocol):
    name: ClassVar[str]
    needs_prompt_tokens: ClassVar[bool]

    def choose(self, candidates: Sequence[Candidate], request: RouteRequest) -> Candidate:
        """Pick one of ``candidates`` (never empty; every one can take the request now)."""
        ...


StrategyFactory = Callable[[StrategyContext], Strategy]


def lowest(candidates: Sequence[Candidate], key: Callable[[Candidate], Key], rng: random.Random) -> Candidate:
    """The candidate with the lowest ``key``; exact ties are broken at random (among them in their order)."""
    best = candidates[0]
    best_key = key(best)
    tied: list[Candidate] | None = None
    for candidate in candidates[1:]:
        candidate_key = key(candidate)
        if candidate_key < best_key:
            best, best_key, tied = candidate, candidate_key, None
        elif candidate_key == best_key:
            if tied is None:
                tied = [best]
            tied.append(candidate)
    return best if tied is None else rng.choice(tied)


def latency_or_none(candidate: Candidate, request: RouteRequest) -> float | None:
    return candidate.deployment.stats.expected_latency(request.stream, request.now)


def loaded_latency(candidate: Candidate, request: RouteRequest) -> float:
    """Expected latency scaled by the requests already in flight there (0 while never measured)."""
    latency = latency_or_none(candidate, request)
    return 0.0 if latency is None else latency * (1 + candidate.deployment.in_flight)
