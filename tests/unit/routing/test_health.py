from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from ailb.errors import UpstreamConnectionError, UpstreamStatusError
from ailb.routing.router import Router
from ailb.routing.stats import DecayingAverage, RecentWindow

from .support import Clock, Recorder, ScriptedProvider, call, completion, config, settings, status_error


def build(
    *providers: ScriptedProvider, aliases: dict[str, tuple[str, ...]] | None = None, **router: Any
) -> tuple[Router, Clock, Recorder]:
    clock, observer = Clock(), Recorder()
    cfg = settings(*(p.config for p in providers), strategy="failover", aliases=aliases, **router)
    instance = Router(cfg, {p.config.name: p for p in providers}, rng=random.Random(1), clock=clock, observer=observer)
    return instance, clock, observer


async def test_start_discovers_ollama_models_and_reports_every_deployment() -> None:
    ollama = ScriptedProvider(config("ollama", provider="ollama", models=()))
    ollama.models = ["llama3:latest", "qwen2:7b"]
    router, _, observer = build(ollama, aliases={"local": ("llama3",)})
    assert router.public_models()["local"] == []
    await router.start()
    try:
        assert router.public_models()["llama3"] == ["ollama"]
        assert router.public_models()["local"] == ["ollama"]
        assert [m.id for m in router.list_models()] == ["llama3:latest", "qwen2:7b", "local"]
        _, info = await router.complete(call("llama3"))
        assert info.model == "llama3:latest" and ollama.calls == ["llama3:latest"]
        assert observer.ups == [("ollama", True)]
    finally:
        await router.aclose()


async def test_failed_discovery_leaves_the_deployment_without_models() -> None:
    ollama = ScriptedProvider(config("ollama", provider="ollama", models=()))
    ollama.models = UpstreamConnectionError("refused", deployment="ollama")
    router, _, _ = build(ollama)
    await router.start()
    await router.aclose()
    assert router.public_models() == {}
    assert router.health()["status"] == "unavailable"


async def test_a_passing_health_check_closes_an_open_circuit() -> None:
    a = ScriptedProvider(config("a"), [status_error("a", 500)])
    router, _, observer = build(a, failure_threshold=1, max_attempts=1)
    with pytest.raises(UpstreamStatusError):
        await router.complete(call())
    assert not router.deployments[0].up
    await router.check_now()
    assert router.deployments[0].up
    assert observer.ups == [("a", False), ("a", True)]


async def test_failing_health_checks_open_the_circuit_and_credentials_trip_it() -> None:
    a = ScriptedProvider(config("a"))
    b = ScriptedProvider(config("b"))
    a.health_outcomes = [UpstreamConnectionError("refused", deployment="a")]
    b.health_outcomes = [status_error("b", 401)]
    router, _, _ = build(a, b, failure_threshold=2)
    await router.check_now()
    assert router.deployments[0].up and not router.deployments[1].up
    await router.check_now()
    assert not router.deployments[0].up
    assert router.stats()["deployments"]["a"]["last_error"]["message"].startswith("health check:")
    assert router.stats()["deployments"]["a"]["requests"] == 0  # checks are not requests


async def test_a_check_the_upstream_refuses_as_a_bad_request_says_nothing() -> None:
    a = ScriptedProvider(config("a"))
    a.health_outcomes = [status_error("a", 404)]
    router, _, _ = build(a, failure_threshold=1)
    await router.check_now()
    assert router.deployments[0].up


async def test_the_check_loop_runs_on_its_interval_and_refreshes_ollama_models() -> None:
    ollama = ScriptedProvider(config("ollama", provider="ollama", models=()))
    ollama.models = ["llama3"]
    openai = ScriptedProvider(config("openai"), [completion()])
    router, _, _ = build(ollama, openai, health_check_interval=0.01)
    await router.start()
    try:
        ollama.models = ["llama3", "phi3"]
        for _ in range(200):
            if "phi3" in router.public_models() and openai.health_checks >= 2:
                break
            await asyncio.sleep(0.01)
        assert "phi3" in router.public_models()
        assert openai.health_checks >= 2
    finally:
        await router.aclose()
    checks = openai.health_checks
    await asyncio.sleep(0.05)
    assert openai.health_checks == checks  # stopped


def test_recent_window_percentiles_and_age_limit() -> None:
    window = RecentWindow(max_age=60.0, size=100)
    for i in range(1, 101):
        window.add(float(i), now=0.0)
    assert window.percentile(0.5, now=10.0) == 50.0
    assert window.percentile(0.95, now=10.0) == 95.0
    assert window.percentile(0.5, now=61.0) is None


def test_decaying_average_follows_recent_samples_more() -> None:
    average = DecayingAverage(half_life=10.0, stale_half_life=100.0)
    assert average.value(0.0) is None
    average.add(1.0, 0.0)
    average.add(3.0, 10.0)  # one half-life later: equal weight
    assert average.raw() == pytest.approx(2.0)
    average.add(3.0, 1000.0)  # long after: the old value is forgotten
    assert average.raw() == pytest.approx(3.0, abs=1e-6)
