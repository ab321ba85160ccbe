"""Choosing the deployment for each attempt of one request, and what to answer when none may take it."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ailb.errors import AILBError, InvalidRequestError, NoDeploymentAvailableError, UpstreamError, UpstreamStatusError
from ailb.routing.attempts import Attempt, AttemptRecorder
from ailb.routing.catalog import Target
from ailb.routing.deployment import Candidate
from ailb.routing.retry import RetryBudget, RetryPolicy, is_client_error, is_misconfigured
from ailb.routing.strategies import RouteRequest, Strategy
from ailb.routing.weights import TrafficWeights

RETRY_SOON = 1.0  # Retry-After for a 503 with no better estimate (no circuit reopening to wait for)


@dataclass(slots=True)
class Plan:
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
    unfit: set[str] = field(default_factory=set)  # deployments whose provider cannot express this request
    unfit_error: InvalidRequestError | None = None

    @property
    def route(self) -> str:
        return self.request.route


class Selector:
    """Candidates are the targets not drained (traffic weight 0), not at their concurrency limit and whose
    circuit lets a request through. The first attempt takes the strategy's choice or fails fast with 503;
    a retry prefers deployments not tried yet, backs off before asking the same one again, and stops at
    ``max_attempts``, the deadline or an empty retry budget."""

    def __init__(
        self,
        weights: TrafficWeights,
        retry: RetryPolicy,
        budget: RetryBudget,
        recorder: AttemptRecorder,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self._weights = weights
        self._retry = retry
        self._budget = budget
        self._recorder = recorder
        self._clock = clock
        self._rng = rng

    def candidates(self, plan: Plan) -> list[Candidate]:
        if plan.unfit or self._weights.overridden:
            return self._weighed_candidates(plan)
        # Every weight is the configured one: the targets' own candidates, made once per catalog.
        return [
            t.candidate
            for t in plan.targets
            if t.candidate.weight > 0 and not t.deployment.at_capacity and t.deployment.circuit.available()
        ]

    def _weighed_candidates(self, plan: Plan) -> list[Candidate]:
        candidates = []
        factor, route, unfit = self._weights.factor, plan.route, plan.unfit
        for target in plan.targets:
            deployment = target.deployment
            if unfit and deployment.name in unfit:
                continue
            weight = deployment.config.weight * factor(route, deployment.name)
            if weight > 0 and not deployment.at_capacity and deployment.circuit.available():
                candidates.append(Candidate(deployment, target.model, weight))
        return candidates

    def pick(self, plan: Plan) -> Candidate | None:
        candidates = self.candidates(plan)
        if not candidates:
            return None
        tried = plan.tried
        if not tried:
            if len(candidates) == 1:
                return candidates[0]
        else:
            candidates = [c for c in candidates if c.name not in tried] or candidates
        plan.request.now = self._clock()
        return plan.strategy.choose(candidates, plan.request)

    async def next(self, plan: Plan) -> Candidate:
        """The candidate for the next attempt, waiting where a retry must; raises when there is none."""
        if plan.attempts == 0:
            pick = self.pick(plan)
            if pick is None:
                raise self.unavailable(plan)
            return pick
        if plan.attempts >= self._retry.max_attempts or self.remaining(plan) <= 0:
            raise self.final_error(plan)
        pick = self.pick(plan)
        waited = False
        if pick is None:
            # Only an upstream's own Retry-After is worth waiting for; a tripped circuit is not.
            honour = plan.last_error is not None and plan.last_error.retry_after is not None
            reopening = self.soonest_reopening(plan) if honour else None
            if reopening is None or reopening > min(self.remaining(plan), self._retry.backoff_cap):
                raise self.final_error(plan)
            await asyncio.sleep(reopening)
            waited = True
            pick = self.pick(plan)
        if pick is None or not self._budget.try_spend(self._clock()):
            raise self.final_error(plan)
        if not waited and pick.name in plan.tried:
            error = plan.last_error if pick.name == plan.last_deployment else None
            delay = self._retry.delay_before_same(error, plan.tried[pick.name], self._rng)
            if delay > self.remaining(plan):
                raise self.final_error(plan)
            await asyncio.sleep(delay)
            pick = self.pick(plan)
            if pick is None:
                raise self.final_error(plan)
        self._recorder.retried(plan.last_deployment, plan.route)
        return pick

    def begin(self, plan: Plan, pick: Candidate) -> Attempt:
        plan.attempts += 1
        plan.tried[pick.name] = plan.tried.get(pick.name, 0) + 1
        return self._recorder.begin(pick.deployment, pick.model, plan.route, plan.request.prompt_tokens, plan.attempts)

    def failed(self, plan: Plan, attempt: Attempt, error: UpstreamError) -> None:
        """Record a failed attempt; client errors are raised to the caller at once."""
        plan.upstream_seconds += self._recorder.failed(attempt, error)
        if is_client_error(error):
            raise error
        plan.last_error = error
        plan.last_deployment = attempt.deployment.name

    def unfit_for(self, plan: Plan, attempt: Attempt, error: InvalidRequestError) -> None:
        """The deployment's provider cannot express this request (e.g. audio for Ollama): no verdict on its
        health, no attempt spent; another deployment of the model may still take it."""
        self._recorder.abandoned(attempt)
        plan.attempts -= 1
        plan.unfit.add(attempt.deployment.name)
        plan.unfit_error = error

    def remaining(self, plan: Plan) -> float:
        return plan.deadline - self._clock()

    def live_targets(self, plan: Plan) -> list[Target]:
        """Targets not drained by a traffic weight of 0."""
        route = plan.route
        return [
            t for t in plan.targets if t.deployment.config.weight * self._weights.factor(route, t.deployment.name) > 0
        ]

    def soonest_reopening(self, plan: Plan) -> float | None:
        waits = [t.deployment.circuit.retry_in() for t in self.live_targets(plan) if not t.deployment.circuit.up]
        return min(waits, default=None)

    def unavailable(self, plan: Plan) -> AILBError:
        route = plan.route
        if plan.unfit_error is not None and not self.candidates(plan):
            return plan.unfit_error
        if not plan.targets:
            return NoDeploymentAvailableError(f"No deployment serves '{route}' at the moment.", retry_after=RETRY_SOON)
        if not self.live_targets(plan):
            return NoDeploymentAvailableError(
                f"Every deployment serving '{route}' is drained (traffic weight 0).", retry_after=RETRY_SOON
            )
        blocked = [t.deployment for t in self.live_targets(plan) if not t.deployment.circuit.up]
        misconfigured = [d for d in blocked if d.misconfigured_status is not None]
        if misconfigured and len(misconfigured) == len(blocked) == len(self.live_targets(plan)):
            return misconfigured_error(misconfigured[0].name, misconfigured[0].misconfigured_status or 401, route)
        reopening = self.soonest_reopening(plan)
        if reopening is not None:
            return NoDeploymentAvailableError(
                f"Every deployment serving '{route}' is unavailable; the soonest is tried again in {reopening:.1f}s.",
                retry_after=reopening,
            )
        return NoDeploymentAvailableError(
            f"Every deployment serving '{route}' is at its concurrency limit.", retry_after=RETRY_SOON
        )

    def final_error(self, plan: Plan) -> AILBError:
        """What the client gets once no further attempt will be made."""
        error = plan.last_error
        if error is None:
            return self.unavailable(plan)
        if isinstance(error, UpstreamStatusError) and is_misconfigured(error):
            return misconfigured_error(plan.last_deployment, error.upstream_status, plan.route)
        if error.status == 503 and "Retry-After" not in error.headers:
            # Every candidate failed to answer (refused, dropped), before or after any circuit opened.
            wait = self.soonest_reopening(plan) or RETRY_SOON
            error.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return error


def misconfigured_error(deployment: str, status: int, route: str) -> UpstreamError:
    """502 naming the deployment (never its key) whose upstream refused the gateway's credentials."""
    return UpstreamError(
        f"Deployment '{deployment}' is misconfigured: its upstream rejected the gateway's credentials "
        f"(HTTP {status}), and no other deployment could serve '{route}'.",
        deployment=deployment,
        status=502,
        retryable=False,
        code="deployment_misconfigured",
    )
