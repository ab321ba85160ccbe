"""The Router: picks a deployment for each request, retries elsewhere on failure, keeps live state.

Per request: resolve the model (aliases included) to deployments serving it; drop those with an open
circuit, at their concurrency limit or at traffic weight 0; let the strategy choose; on a retryable failure
try the next candidate the same strategy chooses (deployments not tried yet first), within ``max_attempts``,
the request deadline and the global retry budget. Client errors (400, 404, 413, 422, ...) go straight back.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ailb.contract import (
    ChatCall,
    Completion,
    EmbeddingCall,
    EmbeddingResult,
    EmbeddingsEgress,
    ModelInfo,
    StreamChunk,
    Usage,
    message_text,
)
from ailb.errors import InvalidRequestError, UpstreamError, UpstreamTimeoutError
from ailb.immutable import immutable
from ailb.observability.tracing import NO_TRACING, Tracing
from ailb.providers.base import Provider
from ailb.routing.attempts import Attempt, AttemptRecorder, RouteObserver
from ailb.routing.catalog import Catalog, Target
from ailb.routing.circuit import CircuitPolicy
from ailb.routing.deadline import Deadlines
from ailb.routing.deployment import Candidate, Deployment
from ailb.routing.health import HealthMonitor
from ailb.routing.pricing import PriceBook
from ailb.routing.report import deployment_health, deployment_stats, overall_status
from ailb.routing.retry import RetryBudget, RetryPolicy
from ailb.routing.routes import GLOBAL_ROUTE
from ailb.routing.selection import Plan, Selector
from ailb.routing.strategies import (
    STRATEGIES,
    RouteRequest,
    Strategy,
    StrategyContext,
    build_strategies,
    normalize_strategy,
    validate_strategy,
)
from ailb.routing.streaming import RelayedChunks, read_until_content, unexpected
from ailb.routing.tokens import TokenCounter
from ailb.routing.weights import TrafficWeights
from ailb.settings import Settings

__all__ = ["RouteInfo", "RouteObserver", "RoutedStream", "Router"]


# Prompts longer than this (characters) are tokenized in a worker thread.
TOKENIZE_IN_THREAD = 32_000

_T = TypeVar("_T")


@immutable
class RouteInfo:
    deployment: str
    provider: str
    model: str
    attempts: int
    strategy: str
    upstream_seconds: float


@dataclass
class RoutedStream:
    """``chunks``: the buffered chunks up to and including the first with content, then the rest. After
    that first content an upstream failure raises ``UpstreamError`` from the iterator; ``await
    chunks.aclose()`` cancels the upstream call."""

    info: RouteInfo
    chunks: AsyncIterator[StreamChunk]


class Router:
    def __init__(
        self,
        settings: Settings,
        providers: Mapping[str, Provider],
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        observer: RouteObserver | None = None,
        tracing: Tracing = NO_TRACING,
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
        self.embedding_catalog = Catalog(self._deployments, {}, embeddings=True)
        self.weights = TrafficWeights()
        self.prices = PriceBook()
        self.tokens = TokenCounter()
        self.retry = RetryPolicy.from_config(settings.router)
        self.budget = RetryBudget.from_config(settings.router)
        self._recorder = AttemptRecorder(clock, observer, self.prices, self.tokens, tracing)
        self._selector = Selector(self.weights, self.retry, self.budget, self._recorder, clock, self._rng)
        self._deadlines = Deadlines()
        self._strategies = build_strategies(StrategyContext(self._rng, self.prices, self.tokens))
        self._health = HealthMonitor(
            self._deployments, settings.router.health_check_interval, self._recorder, clock, self._rebuild_catalogs
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

    async def check_now(self) -> None:
        """One round of the token-free health checks (and Ollama model discovery), now."""
        await self._health.check_all()

    def adopt_state(self, old: Router, keep_overrides: bool) -> None:
        """After a reload: keep live stats and circuits of deployments with the same name, and the traffic
        weight overrides (those still naming a deployment and route) unless ``keep_overrides`` is False."""
        for deployment in self._deployments:
            previous = old._by_name.get(deployment.name)
            if previous is not None:
                deployment.adopt(previous)
        self._rebuild_catalogs()
        self.tokens.adopt(old.tokens)
        if keep_overrides:
            self.weights.adopt(old.weights)
            self.weights.keep(self._by_name, [*self.catalog.names(), *self.embedding_catalog.names()])

    def _rebuild_catalogs(self) -> None:
        self.catalog.rebuild()
        self.embedding_catalog.rebuild()

    # --- what is served ----------------------------------------------------------------------------------
    @property
    def deployments(self) -> Sequence[Deployment]:
        return self._deployments

    def resolve(self, model: str) -> tuple[Target, ...]:
        """Every (deployment, upstream model) that may answer ``model``; ``ModelNotFoundError`` if none. A caller
        that resolves first passes the result on (``complete``/``stream``) so a request is resolved once."""
        return self.catalog.targets(model)

    def list_models(self) -> list[ModelInfo]:
        """Chat models and aliases, then embedding models."""
        return [*self.catalog.list_models(), *self.embedding_catalog.list_models()]

    def public_models(self) -> dict[str, list[str]]:
        """Every route (chat and embedding models, aliases) → the deployments serving it."""
        return {**self.embedding_catalog.public_models(), **self.catalog.public_models()}

    def _catalog_of(self, route: str) -> Catalog | None:
        if route == GLOBAL_ROUTE or self.catalog.has(route):
            return self.catalog
        return self.embedding_catalog if self.embedding_catalog.has(route) else None

    # --- traffic weights ---------------------------------------------------------------------------------
    def set_traffic_weights(self, route: str, weights: Mapping[str, int]) -> dict[str, int]:
        catalog = self._catalog_of(route)
        if catalog is None:
            raise ValueError(f"unknown route {route!r}: use a served model name or '*'")
        return self.weights.apply(route, weights, catalog.serving(route))

    def check_traffic_weights(self, route: str, weights: Mapping[str, int]) -> dict[str, int]:
        """What ``set_traffic_weights`` would apply (``ValueError`` when invalid), without applying it."""
        catalog = self._catalog_of(route)
        if catalog is None:
            raise ValueError(f"unknown route {route!r}: use a served model name or '*'")
        return self.weights.check(route, weights, catalog.serving(route))

    def load_traffic_weights(self, routes: Mapping[str, Mapping[str, int]]) -> None:
        """Put in force the weights the control state holds (those naming what this router serves)."""
        self.weights.replace(routes, self._by_name, [*self.catalog.names(), *self.embedding_catalog.names()])

    def traffic_weights(self, route: str) -> dict[str, int]:
        """The weight (0-100) in force for each deployment serving ``route``; 100 where none was set."""
        catalog = self._catalog_of(route)
        if catalog is None:
            return {}
        return self.weights.in_force(route, catalog.serving(route))

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
    async def complete(
        self, call: ChatCall, *, targets: tuple[Target, ...] | None = None, prompt_tokens: int | None = None
    ) -> tuple[Completion, RouteInfo]:
        """``targets``: ``resolve(call.model)`` when the caller made it; ``prompt_tokens``: the prompt's count when
        the caller already made it (``count_prompt``)."""
        plan = await self._plan(call, False, targets, prompt_tokens)
        completion, pick, attempt = await self._first_answer(plan, lambda pick: self._complete_at(call, pick))
        seconds = self._recorder.succeeded(attempt, completion.usage)
        return completion, self._info(plan, pick, seconds)

    async def stream(
        self, call: ChatCall, *, targets: tuple[Target, ...] | None = None, prompt_tokens: int | None = None
    ) -> RoutedStream:
        plan = await self._plan(call, True, targets, prompt_tokens)
        opened, pick, attempt = await self._first_answer(
            plan, lambda pick: read_until_content(self._stream_at, call, pick)
        )
        upstream, buffered, ended = opened
        ttft = self._recorder.first_token(attempt)
        chunks = RelayedChunks(self._recorder, attempt, upstream, buffered, ended)
        return RoutedStream(self._info(plan, pick, ttft), chunks)

    async def _first_answer(
        self, plan: Plan, answer_at: Callable[[Candidate], Awaitable[_T]]
    ) -> tuple[_T, Candidate, Attempt]:
        """The first pick's answer that comes: a failure fails over (budgeted, within the deadline), a request a
        deployment cannot express moves to another; ``Selector.next`` raises when no pick is left."""
        while True:
            pick = await self._selector.next(plan)
            attempt = self._selector.begin(plan, pick)
            try:
                answer = await self._deadlines.within(self._selector.remaining(plan), answer_at(pick))
            except asyncio.CancelledError:
                self._recorder.abandoned(attempt)
                raise
            except InvalidRequestError as unfit:
                self._selector.unfit_for(plan, attempt, unfit)
                continue
            except Exception as exc:
                self._selector.failed(plan, attempt, self._as_upstream(exc, pick))
                continue
            return answer, pick, attempt

    @staticmethod
    def _complete_at(call: ChatCall, pick: Candidate) -> Awaitable[Completion]:
        provider = pick.deployment.provider
        if call.egress is None:
            return provider.complete(call.body, pick.model)
        return call.egress.complete(provider, call, pick.model)

    @staticmethod
    def _stream_at(call: ChatCall, pick: Candidate) -> AsyncIterator[StreamChunk]:
        provider = pick.deployment.provider
        if call.egress is None:
            return provider.stream(call.body, pick.model, call.include_usage)
        return call.egress.stream(provider, call, pick.model)

    async def embed(self, call: EmbeddingCall, *, prompt_tokens: int) -> tuple[EmbeddingResult, RouteInfo]:
        """Embeddings of ``call.texts`` from a deployment serving the embedding model ``call.model``, with the
        same strategies, retries, failover and circuits as chat. Its duration is not a chat latency, so it does
        not feed the latency the strategies weigh."""
        name, strategy = self._strategy_for(call.strategy)
        now = self._clock()
        request = RouteRequest(call.model, False, 0, now, prompt_tokens)
        self.budget.record_request(now)
        targets = self.embedding_catalog.targets(call.model)
        plan = Plan(name, strategy, targets, request, now + self.settings.router.deadline)
        result, pick, attempt = await self._first_answer(
            plan, lambda pick: embeddings_of(pick).create_embeddings(call.texts, pick.model, call.dimensions)
        )
        usage = Usage(result.prompt_tokens or prompt_tokens)
        seconds = self._recorder.succeeded(attempt, usage, whole=False)
        return result, self._info(plan, pick, seconds)

    async def _plan(
        self, call: ChatCall, stream: bool, resolved: tuple[Target, ...] | None, prompt_tokens: int | None
    ) -> Plan:
        name, strategy = self._strategy_for(call.strategy)
        targets = within_output_caps(self.resolve(call.model) if resolved is None else resolved, call)
        now = self._clock()
        request = RouteRequest(call.model, stream, call.max_tokens, now)
        if prompt_tokens is None and strategy.needs_prompt_tokens:
            prompt_tokens = await self.count_prompt(call)
        request.prompt_tokens = prompt_tokens
        self.budget.record_request(now)
        return Plan(name, strategy, targets, request, now + self.settings.router.deadline)

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

    async def count_prompt(self, call: ChatCall) -> int:
        """The prompt's tokens as counted before sending (large prompts are tokenized in a worker thread)."""
        messages = call.body.get("messages") or []
        size = sum(len(message_text(m.get("content"))) for m in messages if isinstance(m, dict))
        if size > TOKENIZE_IN_THREAD or not self.tokens.loaded:
            return await asyncio.to_thread(self.tokens.count_messages, messages)
        return self.tokens.count_messages(messages)

    def _as_upstream(self, exc: Exception, pick: Candidate) -> UpstreamError:
        name = pick.name
        if isinstance(exc, UpstreamError):
            return exc
        if isinstance(exc, TimeoutError):
            return UpstreamTimeoutError(
                f"Deployment '{name}' did not answer within the request deadline "
                f"of {self.settings.router.deadline:g}s.",
                deployment=name,
            )
        return unexpected(exc, name)

    def _info(self, plan: Plan, pick: Candidate, seconds: float) -> RouteInfo:
        return RouteInfo(
            deployment=pick.name,
            provider=pick.deployment.config.provider,
            model=pick.model,
            attempts=plan.attempts,
            strategy=plan.strategy_name,
            upstream_seconds=plan.upstream_seconds + seconds,
        )


def embeddings_of(pick: Candidate) -> EmbeddingsEgress:
    provider = pick.deployment.provider
    if not isinstance(provider, EmbeddingsEgress):  # settings allow embedding models only where there is one
        raise InvalidRequestError(f"Deployment '{pick.name}' has no embeddings endpoint.", param="model")
    return provider


OUTPUT_PARAMS = ("max_completion_tokens", "max_tokens")


def within_output_caps(targets: tuple[Target, ...], call: ChatCall) -> tuple[Target, ...]:
    """The targets that allow as many output tokens as ``call`` asks; 400 naming the parameter when none does."""
    for param in OUTPUT_PARAMS:
        asked = call.body.get(param)
        if not isinstance(asked, int) or all_allow(targets, asked):
            continue
        allowed = tuple(t for t in targets if t.max_output >= asked)
        if not allowed:
            largest = max(t.max_output for t in targets)
            raise InvalidRequestError(
                f"{param} is too large: {asked}. `{call.model}` supports at most {largest} completion tokens.",
                param=param,
                code="invalid_value",
            )
        targets = allowed
    return targets


def all_allow(targets: tuple[Target, ...], asked: int) -> bool:
    """Whether every target allows ``asked`` output tokens (the usual case: nothing to filter, nothing built)."""
    for target in targets:
        if target.max_output < asked:
            return False
    return True
