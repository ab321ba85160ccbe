"""The Router: picks a deployment for each request, retries elsewhere on failure, keeps live state.

Per request: resolve the model (aliases included) to deployments serving it; drop those with an open
circuit, at their concurrency limit or at traffic weight 0; let the strategy choose; on a retryable failure
try the next candidate the same strategy chooses (deployments not tried yet first), within ``max_attempts``,
the request deadline and the global retry budget. Client errors (400, 404, 413, 422, ...) go straight back.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ailb.errors import (
    AILBError,
    InvalidRequestError,
    NoDeploymentAvailableError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from ailb.providers.base import Provider
from ailb.routing.attempts import Attempt, AttemptRecorder, RouteObserver
from ailb.routing.catalog import Catalog, Target
from ailb.routing.circuit import CircuitPolicy
from ailb.routing.deployment import Candidate, Deployment
from ailb.routing.health import HealthMonitor
from ailb.routing.pricing import PriceBook
from ailb.routing.report import deployment_health, deployment_stats, overall_status
from ailb.routing.retry import RetryBudget, RetryPolicy, is_client_error, is_misconfigured
from ailb.routing.strategies import (
    STRATEGIES,
    RouteRequest,
    Strategy,
    StrategyContext,
    build_strategies,
    normalize_strategy,
    validate_strategy,
)
from ailb.routing.streaming import RelayedChunks, close_quietly, read_until_content, unexpected
from ailb.routing.tokens import TokenCounter
from ailb.routing.weights import ANY_ROUTE, TrafficWeights
from ailb.settings import Settings
from ailb.types import ChatCall, Completion, ModelInfo, StreamChunk

__all__ = ["RouteInfo", "RouteObserver", "RoutedStream", "Router"]

log = logging.getLogger("ailb.routing")

# Prompts longer than this (characters) are tokenized in a worker thread.
TOKENIZE_IN_THREAD = 32_000


@dataclass(frozen=True, slots=True)
class RouteInfo:
    deployment: str
    provider: str
    model: str
    attempts: int
    strategy: str
    upstream_seconds: float


@dataclass
class RoutedStream:
    info: RouteInfo
    chunks: AsyncIterator[StreamChunk]


@dataclass(slots=True)
class _Plan:
    """One request's routing state across its attempts."""

    strategy_name: str
    strategy: Strategy
    targets: tuple[Target, ...]
    request: RouteRequest
    deadline: float
    tried: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    last_error: UpstreamError | None = None
    last_deployment: str = ""
    upstream_seconds: float = 0.0

    @property
    def route(self) -> str:
        return self.request.route


class Router:
    def __init__(
        self,
        settings: Settings,
        providers: Mapping[str, Provider],
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        observer: RouteObserver | None = None,
    ) -> None:
        self.settings = settings
        self.default_strategy = validate_strategy(settings.routing_strategy)
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._observer = observer
        policy = CircuitPolicy.from_config(settings.router)
        missing = [d.name for d in settings.deployments if d.name not in providers]
        if missing:
            raise ValueError(f"no provider for deployment {missing[0]!r}")
        self._deployments = tuple(Deployment(d, providers[d.name], policy, clock) for d in settings.deployments)
        self._by_name = {d.name: d for d in self._deployments}
        self.catalog = Catalog(self._deployments, settings.model_aliases)
        self.weights = TrafficWeights()
        self.prices = PriceBook()
        self.tokens = TokenCounter()
        self.retry = RetryPolicy.from_config(settings.router)
        self.budget = RetryBudget.from_config(settings.router)
        self._recorder = AttemptRecorder(clock, observer, self.prices, self.tokens)
        self._strategies = build_strategies(StrategyContext(self._rng, self.prices, self.tokens))
        self._health = HealthMonitor(
            self._deployments, settings.router.health_check_interval, self._recorder, clock, self.catalog.rebuild
        )

    # --- lifecycle ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Discover Ollama models, load the prompt tokenizer and start the health checks."""
        await self._health.discover()
        await asyncio.to_thread(self.tokens.warm)
        if self._observer is not None:
            for deployment in self._deployments:
                self._observer.deployment_up(deployment.name, deployment.up)
        self._health.start()

    async def aclose(self) -> None:
        await self._health.aclose()

    def adopt_state(self, old: Router, keep_overrides: bool) -> None:
        """After a reload: keep live stats and circuits of deployments with the same name, and the traffic
        weight overrides (those still naming a deployment and route) unless ``keep_overrides`` is False."""
        for deployment in self._deployments:
            previous = old._by_name.get(deployment.name)
            if previous is not None:
                deployment.adopt(previous)
        self.catalog.rebuild()
        self.tokens.adopt(old.tokens)
        if keep_overrides:
            self.weights.adopt(old.weights)
            self.weights.keep(self._by_name, self.catalog.names())

    # --- what is served ----------------------------------------------------------------------------------
    @property
    def deployments(self) -> Sequence[Deployment]:
        return self._deployments

    def resolve(self, model: str) -> None:
        self.catalog.targets(model)

    def list_models(self) -> list[ModelInfo]:
        return self.catalog.list_models()

    def public_models(self) -> dict[str, list[str]]:
        return self.catalog.public_models()

    # --- traffic weights ---------------------------------------------------------------------------------
    def set_traffic_weights(self, route: str, weights: Mapping[str, int]) -> dict[str, int]:
        if route != ANY_ROUTE and not self.catalog.has(route):
            raise ValueError(f"unknown route {route!r}: use a served model name or '*'")
        return self.weights.apply(route, weights, self.catalog.serving(route))

    def traffic_weights(self, route: str) -> dict[str, int]:
        """The weight (0-100) in force for each deployment serving ``route``; 100 where none was set."""
        if route != ANY_ROUTE and not self.catalog.has(route):
            return {}
        return self.weights.in_force(route, self.catalog.serving(route))

    # --- visibility --------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return {
            "status": overall_status(self._deployments),
            "deployments": {d.name: deployment_health(d) for d in self._deployments},
        }

    def stats(self) -> dict[str, Any]:
        now = self._clock()
        return {
            "strategy": self.default_strategy,
            "strategies": list(STRATEGIES),
            "deployments": {d.name: deployment_stats(d, self.weights, now) for d in self._deployments},
            "traffic_weights": self.weights.snapshot(),
            "retry_budget": self.budget.snapshot(now),
        }

    # --- routing -----------------------------------------------------------------------------------------
    async def complete(self, call: ChatCall) -> tuple[Completion, RouteInfo]:
        plan = await self._plan(call, stream=False)
        while True:
            pick = await self._next(plan)
            attempt = self._begin(plan, pick)
            try:
                async with asyncio.timeout(self._remaining(plan)):
                    completion = await pick.deployment.provider.complete(call.body, pick.model)
            except asyncio.CancelledError:
                self._recorder.abandoned(attempt)
                raise
            except Exception as exc:
                self._failed(plan, attempt, self._as_upstream(exc, pick))
                continue
            seconds = self._recorder.succeeded(attempt, completion.usage)
            return completion, self._info(plan, pick, seconds)

    async def stream(self, call: ChatCall) -> RoutedStream:
        plan = await self._plan(call, stream=True)
        while True:
            pick = await self._next(plan)
            attempt = self._begin(plan, pick)
            upstream: AsyncIterator[StreamChunk] | None = None
            try:
                upstream = pick.deployment.provider.stream(call.body, pick.model, call.include_usage)
                async with asyncio.timeout(self._remaining(plan)):
                    buffered, ended = await read_until_content(upstream)
            except asyncio.CancelledError:
                if upstream is not None:
                    await close_quietly(upstream)
                self._recorder.abandoned(attempt)
                raise
            except Exception as exc:
                if upstream is not None:
                    await close_quietly(upstream)
                self._failed(plan, attempt, self._as_upstream(exc, pick))
                continue
            ttft = self._recorder.first_token(attempt)
            chunks = RelayedChunks(self._recorder, attempt, upstream, buffered, ended)
            return RoutedStream(self._info(plan, pick, ttft), chunks)

    async def _plan(self, call: ChatCall, stream: bool) -> _Plan:
        name, strategy = self._strategy_for(call.strategy)
        targets = self.catalog.targets(call.model)
        now = self._clock()
        request = RouteRequest(call.model, stream, call.max_tokens, now)
        if strategy.needs_prompt_tokens:
            request.prompt_tokens = await self._count_prompt(call)
        self.budget.record_request(now)
        return _Plan(name, strategy, targets, request, now + self.settings.router.deadline)

    def _strategy_for(self, requested: str | None) -> tuple[str, Strategy]:
        name = self.default_strategy if requested is None else normalize_strategy(requested)
        strategy = self._strategies.get(name)
        if strategy is None:
            raise InvalidRequestError(
                f"Unknown routing strategy {requested!r}; choose one of {', '.join(STRATEGIES)}.",
                param="routing_strategy",
                code="invalid_value",
            )
        return name, strategy

    async def _count_prompt(self, call: ChatCall) -> int:
        messages = call.body.get("messages") or []
        size = sum(len(m["content"]) for m in messages if isinstance(m, dict) and isinstance(m.get("content"), str))
        if size > TOKENIZE_IN_THREAD or not self.tokens.loaded:
            return await asyncio.to_thread(self.tokens.count_messages, messages)
        return self.tokens.count_messages(messages)

    def _candidates(self, plan: _Plan) -> list[Candidate]:
        candidates = []
        for target in plan.targets:
            deployment = target.deployment
            weight = deployment.config.weight * self.weights.factor(plan.route, deployment.name)
            if weight > 0 and not deployment.at_capacity and deployment.circuit.available():
                candidates.append(Candidate(deployment, target.model, weight))
        return candidates

    def _pick(self, plan: _Plan) -> Candidate | None:
        candidates = self._candidates(plan)
        if not candidates:
            return None
        untried = [c for c in candidates if c.name not in plan.tried]
        plan.request.now = self._clock()
        return plan.strategy.choose(untried or candidates, plan.request)

    async def _next(self, plan: _Plan) -> Candidate:
        """The candidate for the next attempt, waiting where a retry must; raises when there is none."""
        if plan.attempts == 0:
            pick = self._pick(plan)
            if pick is None:
                raise self._unavailable(plan)
            return pick
        if plan.attempts >= self.retry.max_attempts or self._remaining(plan) <= 0:
            raise self._final_error(plan)
        pick = self._pick(plan)
        waited = False
        if pick is None:
            # Only an upstream's own Retry-After is worth waiting for; a tripped circuit is not.
            honour = plan.last_error is not None and plan.last_error.retry_after is not None
            reopening = self._soonest_reopening(plan) if honour else None
            if reopening is None or reopening > min(self._remaining(plan), self.retry.backoff_cap):
                raise self._final_error(plan)
            await asyncio.sleep(reopening)
            waited = True
            pick = self._pick(plan)
        if pick is None or not self.budget.try_spend(self._clock()):
            raise self._final_error(plan)
        if not waited and pick.name in plan.tried:
            error = plan.last_error if pick.name == plan.last_deployment else None
            delay = self.retry.delay_before_same(error, plan.tried[pick.name], self._rng)
            if delay > self._remaining(plan):
                raise self._final_error(plan)
            await asyncio.sleep(delay)
            pick = self._pick(plan)
            if pick is None:
                raise self._final_error(plan)
        self._recorder.retried(plan.last_deployment, plan.route)
        return pick

    def _begin(self, plan: _Plan, pick: Candidate) -> Attempt:
        plan.attempts += 1
        plan.tried[pick.name] = plan.tried.get(pick.name, 0) + 1
        return self._recorder.begin(pick.deployment, pick.model, plan.route, plan.request.prompt_tokens)

    def _failed(self, plan: _Plan, attempt: Attempt, error: UpstreamError) -> None:
        """Record a failed attempt; client errors are raised to the caller at once."""
        plan.upstream_seconds += self._recorder.failed(attempt, error)
        if is_client_error(error):
            raise error
        plan.last_error = error
        plan.last_deployment = attempt.deployment.name

    def _as_upstream(self, exc: Exception, pick: Candidate) -> UpstreamError:
        name = pick.name
        if isinstance(exc, UpstreamError):
            if not exc.deployment:
                exc.deployment = name
            return exc
        if isinstance(exc, TimeoutError):
            return UpstreamTimeoutError(
                f"Deployment '{name}' did not answer within the request deadline "
                f"of {self.settings.router.deadline:g}s.",
                deployment=name,
            )
        return unexpected(exc, name)

    def _info(self, plan: _Plan, pick: Candidate, seconds: float) -> RouteInfo:
        return RouteInfo(
            deployment=pick.name,
            provider=pick.deployment.config.provider,
            model=pick.model,
            attempts=plan.attempts,
            strategy=plan.strategy_name,
            upstream_seconds=plan.upstream_seconds + seconds,
        )

    def _remaining(self, plan: _Plan) -> float:
        return plan.deadline - self._clock()

    def _live_targets(self, plan: _Plan) -> list[Target]:
        """Targets not drained by a traffic weight of 0."""
        route = plan.route
        return [
            t for t in plan.targets if t.deployment.config.weight * self.weights.factor(route, t.deployment.name) > 0
        ]

    def _soonest_reopening(self, plan: _Plan) -> float | None:
        waits = [t.deployment.circuit.retry_in() for t in self._live_targets(plan) if not t.deployment.circuit.up]
        return min(waits, default=None)

    def _unavailable(self, plan: _Plan) -> NoDeploymentAvailableError:
        route = plan.route
        if not plan.targets:
            return NoDeploymentAvailableError(f"No deployment serves '{route}' at the moment.")
        if not self._live_targets(plan):
            return NoDeploymentAvailableError(f"Every deployment serving '{route}' is drained (traffic weight 0).")
        reopening = self._soonest_reopening(plan)
        if reopening is not None:
            return NoDeploymentAvailableError(
                f"Every deployment serving '{route}' is unavailable; the soonest is tried again in {reopening:.1f}s.",
                retry_after=reopening,
            )
        return NoDeploymentAvailableError(
            f"Every deployment serving '{route}' is at its concurrency limit.", retry_after=1.0
        )

    def _final_error(self, plan: _Plan) -> AILBError:
        """What the client gets once no further attempt will be made."""
        error = plan.last_error
        if error is None:
            return self._unavailable(plan)
        if is_misconfigured(error):
            status = error.upstream_status if isinstance(error, UpstreamStatusError) else 401
            name = plan.last_deployment
            return UpstreamError(
                f"Deployment '{name}' is misconfigured: it rejected the gateway's credentials (HTTP {status}), "
                f"and no other deployment could serve '{plan.route}'.",
                deployment=name,
                status=502,
                retryable=False,
                code="deployment_misconfigured",
            )
        return error
