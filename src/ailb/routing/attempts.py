"""Bookkeeping of one attempt at one deployment: load, circuit, stats, cost and the observer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ailb.contract import Usage
from ailb.errors import UpstreamError, UpstreamStatusError, UpstreamTimeoutError
from ailb.observability.tracing import NO_SPAN, NO_TRACING, AttemptSpan, Tracing
from ailb.routing.deployment import Deployment
from ailb.routing.pricing import PriceBook
from ailb.routing.retry import is_client_error, is_misconfigured
from ailb.routing.tokens import TokenCounter

log = logging.getLogger("ailb.routing")

SUCCESS, ERROR, CLIENT_ERROR = "success", "error", "client_error"


class RouteObserver(Protocol):
    """What the router reports (implemented by ``observability.Metrics``)."""

    def attempt_finished(
        self,
        deployment: str,
        model: str,
        outcome: str,
        seconds: float,
        ttft_seconds: float | None,
        usage: Usage | None,
        cost_usd: float,
    ) -> None: ...

    def retried(self, deployment: str, model: str) -> None: ...

    def deployment_up(self, deployment: str, up: bool) -> None: ...


@dataclass(slots=True)
class Attempt:
    deployment: Deployment
    model: str  # the upstream model name
    route: str  # the name the client asked for
    started: float
    probe: bool
    prompt_tokens: int | None
    ttft: float | None = None
    settled: bool = False
    span: AttemptSpan = NO_SPAN


class AttemptRecorder:
    def __init__(
        self,
        clock: Callable[[], float],
        observer: RouteObserver | None,
        prices: PriceBook,
        tokens: TokenCounter,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self._clock = clock
        self._observer = observer
        self._prices = prices
        self._tokens = tokens
        self._tracing = tracing

    def begin(
        self, deployment: Deployment, model: str, route: str, prompt_tokens: int | None, number: int = 1
    ) -> Attempt:
        """The ``number``-th attempt of a request starts; its span is the one sent upstream as ``traceparent``."""
        deployment.in_flight += 1
        probe = deployment.circuit.acquire()
        span = self._tracing.start_attempt(deployment.config, model, number)
        return Attempt(deployment, model, route, self._clock(), probe, prompt_tokens, span=span)

    def elapsed(self, attempt: Attempt) -> float:
        return max(0.0, self._clock() - attempt.started)

    def first_token(self, attempt: Attempt) -> float:
        """A stream's first content arrived: measure and record the time to first token."""
        attempt.ttft = self.elapsed(attempt)
        attempt.deployment.stats.record_ttft(attempt.ttft, self._clock())
        return attempt.ttft

    def succeeded(self, attempt: Attempt, usage: Usage | None, *, whole: bool = True) -> float:
        """The deployment answered. ``whole`` is False when the duration is no chat answer's latency: a stream
        the client closed early, an embeddings call."""
        seconds = self._settle(attempt)
        if seconds is None:
            return 0.0
        deployment, now = attempt.deployment, self._clock()
        if whole:
            deployment.stats.record_latency(seconds, now)
        price = self._prices.price(deployment.config, attempt.model)
        cost = price.cost_of(usage) if price is not None else 0.0
        deployment.stats.record_success(usage, cost, now)
        if usage is not None and attempt.prompt_tokens:
            self._tokens.observe(attempt.model, attempt.prompt_tokens, usage.prompt_tokens)
        deployment.misconfigured_status = None
        if deployment.circuit.record_success(attempt.probe):
            self.announce(deployment)
        self._report(attempt, SUCCESS, seconds, usage, cost)
        attempt.span.succeeded(usage)
        return seconds

    def failed(self, attempt: Attempt, error: UpstreamError) -> float:
        seconds = self._settle(attempt)
        if seconds is None:
            return 0.0
        deployment, now = attempt.deployment, self._clock()
        attempt.span.failed(error)
        if is_client_error(error):
            deployment.stats.record_client_error()
            deployment.circuit.release(attempt.probe)
            self._report(attempt, CLIENT_ERROR, seconds, None, 0.0)
            return seconds
        if isinstance(error, UpstreamTimeoutError):
            deployment.stats.record_latency(seconds, now)
        deployment.stats.record_failure(deployment.redact(error.message), now)
        if isinstance(error, UpstreamStatusError) and is_misconfigured(error):
            deployment.misconfigured_status = error.upstream_status
            flipped = deployment.circuit.trip(attempt.probe)
            log.error("deployment %s is misconfigured: %s", deployment.name, error.log_message)
        else:
            retry_after = error.retry_after if isinstance(error, UpstreamStatusError) else None
            flipped = deployment.circuit.record_failure(attempt.probe, retry_after)
            log.warning("deployment %s failed: %s", deployment.name, error.log_message)
        if flipped:
            self.announce(deployment)
        self._report(attempt, ERROR, seconds, None, 0.0)
        return seconds

    def abandoned(self, attempt: Attempt) -> None:
        """Cancelled before an answer (the client left): no verdict on the deployment."""
        if self._settle(attempt) is not None:
            attempt.deployment.circuit.release(attempt.probe)
            attempt.span.abandoned()

    def announce(self, deployment: Deployment) -> None:
        log.info("deployment %s is %s", deployment.name, "up" if deployment.up else "down")
        if self._observer is not None:
            self._observer.deployment_up(deployment.name, deployment.up)

    def retried(self, deployment: str, route: str) -> None:
        if self._observer is not None:
            self._observer.retried(deployment, route)

    def _settle(self, attempt: Attempt) -> float | None:
        if attempt.settled:
            return None
        attempt.settled = True
        attempt.deployment.in_flight -= 1
        return self.elapsed(attempt)

    def _report(self, attempt: Attempt, outcome: str, seconds: float, usage: Usage | None, cost: float) -> None:
        if self._observer is not None:
            self._observer.attempt_finished(
                attempt.deployment.name, attempt.route, outcome, seconds, attempt.ttft, usage, cost
            )
