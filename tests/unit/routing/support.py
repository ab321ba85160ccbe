"""Test doubles for the router's unit tests: a manual clock and a scripted in-test provider."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ailb.contract import ChatCall, Completion, StreamChunk, Usage
from ailb.errors import UpstreamStatusError
from ailb.routing.circuit import CircuitPolicy
from ailb.routing.deployment import Candidate, Deployment
from ailb.routing.pricing import PriceBook
from ailb.routing.strategies import RouteRequest, StrategyContext
from ailb.routing.tokens import TokenCounter
from ailb.settings import DeploymentConfig, RouterConfig, Settings


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def config(name: str, provider: str = "openai", models: Sequence[str] = ("gpt-4o",), **extra: Any) -> DeploymentConfig:
    base_url = "http://127.0.0.1:9" if provider == "ollama" else f"https://{name}.example.com/v1"
    return DeploymentConfig(
        name=name,
        provider=provider,
        base_url=extra.pop("base_url", base_url),
        api_key=extra.pop("api_key", "k"),
        models=tuple(models),
        **extra,
    )


def completion(text: str = "hi", prompt: int = 10, completion_tokens: int = 5) -> Completion:
    body = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
    return Completion(body=body, usage=Usage(prompt, completion_tokens), text=text)


def status_error(name: str, status: int, retry_after: float | None = None) -> UpstreamStatusError:
    return UpstreamStatusError(
        f"HTTP {status} from {name}", upstream_status=status, deployment=name, retry_after=retry_after
    )


def content(text: str) -> StreamChunk:
    return StreamChunk(frame=f"data: {text}\n\n".encode(), text=text, has_content=True)


def role_chunk() -> StreamChunk:
    return StreamChunk(frame=b"data: role\n\n")


def final_chunk(prompt: int = 10, completion_tokens: int = 3) -> StreamChunk:
    return StreamChunk(frame=b"data: end\n\n", finish_reason="stop", usage=Usage(prompt, completion_tokens))


class ScriptedProvider:
    """A provider answering from a script: each call takes the next outcome (the last one repeats).

    For ``complete`` an outcome is a ``Completion`` or an exception; for ``stream`` it is a list of chunks and
    exceptions, yielded (or raised) in order.
    """

    def __init__(self, cfg: DeploymentConfig, outcomes: Iterable[Any] = (), streams: Iterable[list[Any]] = ()):
        self.config = cfg
        self.outcomes = list(outcomes) or [completion()]
        self.streams = list(streams) or [[role_chunk(), content("hi"), final_chunk()]]
        self.calls: list[str] = []
        self.stream_calls: list[str] = []
        self.closed_streams = 0
        self.health_outcomes: list[Exception | None] = [None]
        self.health_checks = 0
        self.models: list[str] | Exception = list(cfg.models)

    @staticmethod
    def _take(script: list[Any]) -> Any:
        return script.pop(0) if len(script) > 1 else script[0]

    async def complete(self, body: Mapping[str, Any], model: str) -> Completion:
        self.calls.append(model)
        outcome = self._take(self.outcomes)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[no-any-return]

    async def stream(self, body: Mapping[str, Any], model: str, include_usage: bool) -> AsyncIterator[StreamChunk]:
        self.stream_calls.append(model)
        script = list(self._take(self.streams))
        try:
            for item in script:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.closed_streams += 1

    async def list_models(self) -> list[str]:
        if isinstance(self.models, Exception):
            raise self.models
        return list(self.models)

    async def check_health(self) -> None:
        self.health_checks += 1
        outcome = self._take(self.health_outcomes)
        if outcome is not None:
            raise outcome

    async def aclose(self) -> None:
        pass


def settings(
    *configs: DeploymentConfig,
    strategy: str = "round_robin",
    aliases: Mapping[str, tuple[str, ...]] | None = None,
    **router: Any,
) -> Settings:
    defaults: dict[str, Any] = {"backoff_base": 0.0, "health_check_interval": 0.0, "retry_budget_min_per_s": 100.0}
    return Settings(
        routing_strategy=strategy,
        deployments=tuple(configs),
        model_aliases=dict(aliases or {}),
        router=replace(RouterConfig(), **{**defaults, **router}),
    )


def call(model: str = "gpt-4o", *, stream: bool = False, strategy: str | None = None, **body: Any) -> ChatCall:
    payload = {"model": model, "messages": [{"role": "user", "content": "Hello there"}], **body}
    return ChatCall(body=payload, model=model, stream=stream, include_usage=False, tenant="t", strategy=strategy)


class Recorder:
    """A RouteObserver that keeps what it was told."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, str, str, float | None, Usage | None, float]] = []
        self.retries: list[tuple[str, str]] = []
        self.ups: list[tuple[str, bool]] = []

    def attempt_finished(
        self,
        deployment: str,
        model: str,
        outcome: str,
        seconds: float,
        ttft_seconds: float | None,
        usage: Usage | None,
        cost_usd: float,
    ) -> None:
        self.attempts.append((deployment, model, outcome, ttft_seconds, usage, cost_usd))

    def retried(self, deployment: str, model: str) -> None:
        self.retries.append((deployment, model))

    def deployment_up(self, deployment: str, up: bool) -> None:
        self.ups.append((deployment, up))


# --- strategy helpers ------------------------------------------------------------------------------------
def deployment(cfg: DeploymentConfig, clock: Clock) -> Deployment:
    return Deployment(cfg, ScriptedProvider(cfg), CircuitPolicy(), clock)


def candidate(d: Deployment, weight: float | None = None, model: str = "gpt-4o") -> Candidate:
    return Candidate(d, model, d.config.weight if weight is None else weight)


def context(seed: int = 7, tokens: TokenCounter | None = None) -> StrategyContext:
    return StrategyContext(random.Random(seed), PriceBook(), tokens or TokenCounter(lambda: None))


def request(
    clock: Clock,
    *,
    stream: bool = False,
    max_tokens: int | None = None,
    prompt_tokens: int | None = None,
    route: str = "gpt-4o",
) -> RouteRequest:
    return RouteRequest(route, stream, max_tokens, clock(), prompt_tokens)
