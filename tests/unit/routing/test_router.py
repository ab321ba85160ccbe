from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from ailb.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    NoDeploymentAvailableError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from ailb.routing.router import Router

from .support import Clock, Recorder, ScriptedProvider, call, completion, config, settings, status_error


def build(
    *providers: ScriptedProvider,
    strategy: str = "failover",
    clock: Clock | None = None,
    aliases: dict[str, tuple[str, ...]] | None = None,
    **router: Any,
) -> tuple[Router, Clock, Recorder]:
    clock = clock or Clock()
    observer = Recorder()
    cfg = settings(*(p.config for p in providers), strategy=strategy, aliases=aliases, **router)
    instance = Router(cfg, {p.config.name: p for p in providers}, rng=random.Random(1), clock=clock, observer=observer)
    return instance, clock, observer


def provider(name: str, *outcomes: Any, **cfg: Any) -> ScriptedProvider:
    return ScriptedProvider(config(name, **cfg), outcomes)


async def test_answers_from_the_chosen_deployment_with_route_info() -> None:
    a = provider("a", completion("from a", 12, 4))
    router, _, observer = build(a, provider("b"))
    result, info = await router.complete(call())
    assert result.text == "from a"
    assert (info.deployment, info.provider, info.model, info.attempts, info.strategy) == (
        "a",
        "openai",
        "gpt-4o",
        1,
        "failover",
    )
    assert observer.attempts[0][:3] == ("a", "gpt-4o", "success")
    usage, cost = observer.attempts[0][4], observer.attempts[0][5]
    assert usage is not None and usage.prompt_tokens == 12
    assert cost == pytest.approx(12 / 1000 * 0.0025 + 4 / 1000 * 0.01)


async def test_fails_over_on_500() -> None:
    a, b = provider("a", status_error("a", 500)), provider("b", completion("from b"))
    router, _, observer = build(a, b)
    result, info = await router.complete(call())
    assert result.text == "from b" and info.deployment == "b" and info.attempts == 2
    assert a.calls == ["gpt-4o"] and b.calls == ["gpt-4o"]
    assert [o[2] for o in observer.attempts] == ["error", "success"]
    assert observer.retries == [("a", "gpt-4o")]
    stats = router.stats()["deployments"]
    assert stats["a"]["failures"] == 1 and stats["b"]["successes"] == 1
    assert "HTTP 500" in stats["a"]["last_error"]["message"]


@pytest.mark.parametrize("status", [400, 404, 413, 422])
async def test_does_not_fail_over_on_client_errors(status: int) -> None:
    error = status_error("a", status)
    a, b = provider("a", error), provider("b")
    router, _, observer = build(a, b)
    with pytest.raises(UpstreamStatusError) as raised:
        await router.complete(call())
    assert raised.value is error and raised.value.status == status
    assert b.calls == []
    assert observer.attempts[0][2] == "client_error" and observer.retries == []
    assert router.deployments[0].circuit.consecutive_failures == 0  # never counts against health


async def test_misconfigured_deployment_fails_over_and_is_marked_down() -> None:
    a, b = provider("a", status_error("a", 401)), provider("b")
    router, _, observer = build(a, b)
    _, info = await router.complete(call())
    assert info.deployment == "b"
    assert not router.deployments[0].up and ("a", False) in observer.ups
    _, info = await router.complete(call())
    assert info.deployment == "b" and a.calls == ["gpt-4o"]  # not asked again while its circuit is open


async def test_misconfigured_without_alternative_answers_502_naming_the_deployment() -> None:
    a = provider("primary", status_error("primary", 403), api_key="sk-secret-key-1234567890")
    router, _, _ = build(a)
    with pytest.raises(UpstreamError) as raised:
        await router.complete(call())
    error = raised.value
    assert error.status == 502 and error.deployment == "primary"
    assert "primary" in error.message and "misconfigured" in error.message
    assert "sk-secret" not in error.message
    assert len(a.calls) == 1  # a tripped circuit is not waited for
    with pytest.raises(UpstreamError) as again:
        await router.complete(call())
    assert again.value.status == 502 and "'primary' is misconfigured" in again.value.message
    assert len(a.calls) == 1  # answered from the open circuit, fast
    assert router.health()["deployments"]["primary"]["misconfigured"] is True


async def test_a_reload_with_a_new_key_gives_a_misconfigured_deployment_a_fresh_chance() -> None:
    a = provider("a", status_error("a", 401), completion("fixed"))
    old, clock, _ = build(a)
    with pytest.raises(UpstreamError):
        await old.complete(call())
    same, _, _ = build(a, clock=clock)
    same.adopt_state(old, keep_overrides=True)
    assert not same.deployments[0].up
    fixed = provider("a", completion("fixed"), api_key="new-key")
    new, _, _ = build(fixed, clock=clock)
    new.adopt_state(old, keep_overrides=True)
    assert new.deployments[0].up and new.stats()["deployments"]["a"]["failures"] == 1
    result, _ = await new.complete(call())
    assert result.text == "fixed"


async def test_all_circuits_open_answers_503_at_once_with_the_soonest_reopening() -> None:
    a, b = provider("a", status_error("a", 503)), provider("b", status_error("b", 503))
    router, clock, _ = build(a, b, failure_threshold=1, cooldown=5.0, max_attempts=2)
    with pytest.raises(UpstreamStatusError):
        await router.complete(call())
    clock.advance(2.0)
    router.deployments[1].circuit.record_failure(probe=False, retry_after=30.0)
    with pytest.raises(NoDeploymentAvailableError) as raised:
        await router.complete(call())
    assert raised.value.status == 503
    assert raised.value.retry_after == pytest.approx(3.0)
    assert raised.value.headers["Retry-After"] == "3"
    assert len(a.calls) == 1 and len(b.calls) == 1


async def test_a_half_open_deployment_gets_one_probe_and_closes_on_success() -> None:
    a = provider("a", status_error("a", 500), completion("back"))
    router, clock, observer = build(a, failure_threshold=1, cooldown=5.0, max_attempts=1)
    with pytest.raises(UpstreamStatusError):
        await router.complete(call())
    clock.advance(5.0)
    result, _ = await router.complete(call())
    assert result.text == "back" and router.deployments[0].up
    assert observer.ups == [("a", False), ("a", True)]


async def test_retries_the_same_deployment_when_it_is_the_only_one() -> None:
    a = provider("a", UpstreamConnectionError("refused", deployment="a"), completion("second time"))
    router, _, observer = build(a)
    result, info = await router.complete(call())
    assert result.text == "second time" and info.attempts == 2 and len(a.calls) == 2
    assert observer.retries == [("a", "gpt-4o")]


async def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    errors = [status_error(n, 502) for n in "abcd"]
    providers = [provider(n, e) for n, e in zip("abcd", errors, strict=True)]
    router, _, _ = build(*providers, max_attempts=3)
    with pytest.raises(UpstreamStatusError) as raised:
        await router.complete(call())
    assert raised.value is errors[2]
    assert [len(p.calls) for p in providers] == [1, 1, 1, 0]


async def test_retry_after_on_a_429_opens_the_circuit_for_that_long() -> None:
    a, b = provider("a", status_error("a", 429, retry_after=20.0)), provider("b")
    router, clock, _ = build(a, b)
    _, info = await router.complete(call())
    assert info.deployment == "b"
    circuit = router.deployments[0].circuit
    assert circuit.state == "open" and circuit.retry_in() == 20.0
    clock.advance(20.0)
    assert circuit.available()


async def test_a_short_retry_after_on_the_only_deployment_is_waited_for() -> None:
    a = provider("a", status_error("a", 429, retry_after=0.0), completion("after waiting"))
    router, _, _ = build(a)
    result, info = await router.complete(call())
    assert result.text == "after waiting" and info.attempts == 2


async def test_a_long_retry_after_is_returned_to_the_client() -> None:
    a = provider("a", status_error("a", 429, retry_after=60.0))
    router, _, _ = build(a)
    with pytest.raises(UpstreamStatusError) as raised:
        await router.complete(call())
    assert raised.value.status == 429 and raised.value.headers["Retry-After"] == "60"
    assert len(a.calls) == 1


async def test_the_retry_budget_stops_retry_storms() -> None:
    a, b = provider("a", status_error("a", 500)), provider("b", status_error("b", 500))
    router, _, observer = build(a, b, retry_budget_ratio=0.0, retry_budget_min_per_s=0.1, failure_threshold=100)
    with pytest.raises(UpstreamStatusError):
        await router.complete(call())  # the one retry the budget allows in its window
    with pytest.raises(UpstreamStatusError):
        await router.complete(call())
    assert len(observer.retries) == 1
    assert len(a.calls) + len(b.calls) == 3


async def test_unknown_model_and_unknown_strategy_are_client_errors() -> None:
    router, _, _ = build(provider("a"))
    with pytest.raises(ModelNotFoundError):
        router.resolve("nope")
    with pytest.raises(ModelNotFoundError):
        await router.complete(call("nope"))
    with pytest.raises(InvalidRequestError) as raised:
        await router.complete(call(strategy="fastest"))
    assert raised.value.param == "routing_strategy" and raised.value.status == 400


async def test_request_strategy_overrides_the_default() -> None:
    a, b = provider("a", weight=1), provider("b", weight=1)
    router, _, _ = build(a, b, strategy="failover")
    infos = [(await router.complete(call(strategy="round_robin")))[1] for _ in range(4)]
    assert [i.deployment for i in infos] == ["a", "b", "a", "b"]
    assert {i.strategy for i in infos} == {"round_robin"}
    assert router.stats()["strategy"] == "failover"


async def test_an_alias_reaches_every_provider_serving_its_targets() -> None:
    a = provider("openai", status_error("openai", 500), models=("gpt-4o",))
    b = provider("anthropic", completion("claude"), provider="anthropic", models=("claude-3-5-sonnet-latest",))
    router, _, _ = build(a, b, aliases={"smart": ("gpt-4o", "claude-3-5-sonnet-latest")})
    result, info = await router.complete(call("smart"))
    assert result.text == "claude" and info.model == "claude-3-5-sonnet-latest" and info.provider == "anthropic"
    assert a.calls == ["gpt-4o"] and b.calls == ["claude-3-5-sonnet-latest"]


async def test_traffic_weight_zero_drains_and_all_drained_is_503() -> None:
    a, b = provider("a"), provider("b")
    router, _, _ = build(a, b)
    router.set_traffic_weights("gpt-4o", {"a": 0, "b": 100})
    _, info = await router.complete(call())
    assert info.deployment == "b"
    assert router.traffic_weights("gpt-4o") == {"a": 0, "b": 100}
    assert router.traffic_weights("*") == {"a": 100, "b": 100}
    drained, _, _ = build(provider("c", weight=0))
    with pytest.raises(NoDeploymentAvailableError, match="drained"):
        await drained.complete(call())


async def test_set_traffic_weights_rejects_unknown_routes_and_names() -> None:
    router, _, _ = build(provider("a"), provider("b"))
    with pytest.raises(ValueError, match="unknown route"):
        router.set_traffic_weights("nope", {"a": 1})
    with pytest.raises(ValueError, match="'zzz'"):
        router.set_traffic_weights("*", {"zzz": 1})
    assert router.stats()["traffic_weights"] == {}


async def test_weights_scale_round_robin_traffic() -> None:
    a, b = provider("a", weight=1), provider("b", weight=1)
    router, _, _ = build(a, b, strategy="round_robin")
    router.set_traffic_weights("*", {"a": 75, "b": 25})
    picks = [(await router.complete(call()))[1].deployment for _ in range(8)]
    assert picks.count("a") == 6 and picks.count("b") == 2


async def test_load_balanced_weighs_configured_weights_then_overrides() -> None:
    a, b = provider("a", weight=2), provider("b", weight=1)
    router, _, _ = build(a, b, strategy="load_balanced")
    router.deployments[0].in_flight, router.deployments[1].in_flight = 3, 1  # 3 / 2 against 1 / 1
    assert (await router.complete(call()))[1].deployment == "b"
    router.set_traffic_weights("gpt-4o", {"b": 25})  # 1 / 0.25: now a has the lower load
    assert (await router.complete(call()))[1].deployment == "a"
    router.set_traffic_weights("gpt-4o", {"b": 100})
    assert (await router.complete(call()))[1].deployment == "b"


async def test_a_deployment_at_its_concurrency_limit_is_skipped() -> None:
    a, b = provider("a", max_concurrency=1), provider("b")
    router, _, _ = build(a, b)
    router.deployments[0].in_flight = 1
    _, info = await router.complete(call())
    assert info.deployment == "b"
    router.deployments[1].in_flight = 5
    router.set_traffic_weights("*", {"a": 100, "b": 0})
    with pytest.raises(NoDeploymentAvailableError, match="concurrency limit") as raised:
        await router.complete(call())
    assert raised.value.retry_after == 1.0


async def test_cost_optimized_routes_by_price_and_learns_token_calibration() -> None:
    dear = provider("dear", completion(prompt=40), models=("m",), input_cost_per_1k=1.0, output_cost_per_1k=1.0)
    cheap = provider("cheap", completion(prompt=40), models=("m",), input_cost_per_1k=0.1, output_cost_per_1k=0.1)
    router, _, _ = build(dear, cheap, strategy="cost_optimized")
    _, info = await router.complete(call("m"))
    assert info.deployment == "cheap"
    assert router.tokens.ratio("m") != 1.0  # the upstream's prompt_tokens calibrated the count


async def test_stats_and_health_describe_every_deployment() -> None:
    a = provider("a", completion(prompt=100, completion_tokens=50), version="v2")
    b = provider("b", status_error("b", 500))
    router, _, _ = build(a, b, strategy="load_balanced", failure_threshold=1)
    await router.complete(call())
    router.deployments[1].circuit.record_failure(probe=False)
    stats = router.stats()
    assert stats["strategy"] == "load_balanced"
    one = stats["deployments"]["a"]
    assert one["provider"] == "openai" and one["version"] == "v2" and one["models"] == ["gpt-4o"]
    assert (one["requests"], one["successes"], one["failures"], one["in_flight"]) == (1, 1, 0, 0)
    assert one["tokens"] == {"input": 100, "output": 50}
    assert one["cost_usd"] == pytest.approx(0.1 * 0.0025 + 0.05 * 0.01)
    assert set(one["latency"]) == {"ewma_ms", "p50_ms", "p95_ms"} and one["latency"]["p50_ms"] == 0.0
    assert one["weight"] == {"config": 1.0, "traffic": 100, "effective": 1.0}
    assert one["circuit"]["state"] == "closed"
    assert stats["deployments"]["b"]["circuit"]["state"] == "open"
    assert stats["deployments"]["b"]["circuit"]["retry_in_seconds"] == 5.0
    health = router.health()
    assert health["status"] == "degraded"
    assert health["deployments"]["b"]["up"] is False and health["deployments"]["a"]["up"] is True


async def test_last_error_never_shows_a_key() -> None:
    key = "sk-live-abcdefghijklmnop"
    a = provider("a", UpstreamConnectionError(f"boom with {key} and Bearer tok123456", deployment="a"), api_key=key)
    router, _, _ = build(a, max_attempts=1)
    with pytest.raises(UpstreamConnectionError):
        await router.complete(call())
    message = router.stats()["deployments"]["a"]["last_error"]["message"]
    assert key not in message and "tok123456" not in message and "boom" in message


async def test_list_and_public_models() -> None:
    a = provider("a", models=("gpt-4o", "gpt-4o-mini"))
    b = provider("b", provider="anthropic", models=("claude-3-opus-latest",))
    router, _, _ = build(a, b, aliases={"best": ("claude-3-opus-latest",)})
    assert [(m.id, m.owned_by) for m in router.list_models()] == [
        ("gpt-4o", "openai"),
        ("gpt-4o-mini", "openai"),
        ("claude-3-opus-latest", "anthropic"),
        ("best", "anthropic"),
    ]
    assert router.public_models()["best"] == ["b"]


async def test_adopt_state_keeps_stats_circuits_and_weights() -> None:
    a, b = provider("a", status_error("a", 500)), provider("b")
    old, clock, _ = build(a, b, failure_threshold=1)
    await old.complete(call())
    old.set_traffic_weights("*", {"a": 100, "b": 50})
    new, _, _ = build(a, b, clock=clock, failure_threshold=1)
    new.adopt_state(old, keep_overrides=True)
    assert new.stats()["deployments"]["a"]["failures"] == 1
    assert new.deployments[0].circuit.state == "open"
    assert new.traffic_weights("*") == {"a": 100, "b": 50}
    fresh, _, _ = build(a, b, clock=clock)
    fresh.adopt_state(old, keep_overrides=False)
    assert fresh.traffic_weights("*") == {"a": 100, "b": 100}


async def test_an_unexpected_provider_exception_becomes_an_upstream_error() -> None:
    a, b = provider("a", KeyError("choices")), provider("b", completion("fine"))
    router, _, _ = build(a, b)
    result, info = await router.complete(call())
    assert result.text == "fine" and info.attempts == 2
    assert "KeyError" in router.stats()["deployments"]["a"]["last_error"]["message"]


async def test_health_is_unavailable_when_nothing_can_serve() -> None:
    a = provider("a")
    router, _, _ = build(a)
    router.deployments[0].circuit.trip(probe=False)
    assert router.health()["status"] == "unavailable"


async def test_a_request_one_provider_cannot_express_goes_to_another_without_hurting_its_health() -> None:
    unfit = InvalidRequestError("Ollama needs image bytes, not an http URL.", param="messages")
    a = provider("a", unfit, unfit, unfit, unfit)
    b = provider("b", completion("from b"))
    router, _, observer = build(a, b)
    result, info = await router.complete(call())
    assert result.text == "from b" and info.deployment == "b" and info.attempts == 1
    assert router.deployments[0].circuit.consecutive_failures == 0
    assert observer.retries == []

    lonely, _, _ = build(provider("c", unfit, unfit, unfit, unfit))
    for _ in range(4):  # a client's bad request, again and again, never opens the circuit
        with pytest.raises(InvalidRequestError) as raised:
            await lonely.complete(call())
        assert raised.value is unfit
    assert lonely.deployments[0].circuit.state == "closed"
    assert lonely.deployments[0].in_flight == 0


class HangingProvider(ScriptedProvider):
    """Answers only after a long time; notes when its call was cancelled."""

    cancelled = 0

    async def complete(self, body: Any, model: str) -> Any:
        self.calls.append(model)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return completion()


async def test_an_attempt_past_the_request_deadline_is_cancelled_and_fails_over() -> None:
    hanging, b = HangingProvider(config("a")), provider("b", completion("from b"))
    router, _, observer = build(hanging, b, deadline=0.05)
    result, info = await router.complete(call())
    assert (result.text, info.deployment, info.attempts) == ("from b", "b", 2)
    assert hanging.cancelled == 1
    assert observer.attempts[0][:3] == ("a", "gpt-4o", "error")


async def test_no_answer_within_the_request_deadline_is_a_timeout_naming_it() -> None:
    hanging = HangingProvider(config("a"))
    router, _, _ = build(hanging, deadline=0.02, max_attempts=1)
    with pytest.raises(UpstreamTimeoutError, match=r"did not answer within the request deadline of 0\.02s"):
        await router.complete(call())
    assert hanging.cancelled == 1
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
