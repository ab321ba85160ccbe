"""Routing over real sockets: the real app in front of the three wire-level fakes.

The env-only setup (openai, then anthropic, then ollama by priority) plus an alias ``smart`` that every one of
them serves, so failover between providers can be watched from the client's side.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.fakes import Fault
from tests.integration.conftest import GatewayFactory
from tests.integration.harness import RunningGateway
from tests.integration.upstreams import OPENAI_KEY, Upstreams

ALIASES = """
model_aliases:
  smart: [gpt-4o, claude-3-5-sonnet-latest, llama3.2]
"""


def chat(model: str = "smart", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "Say hello"}], **extra}


@pytest.fixture
def gateway(run_gateway: GatewayFactory, upstreams: Upstreams) -> RunningGateway:
    upstreams.reset()
    env = {**upstreams.env(), "ROUTING_STRATEGY": "failover", "HEALTH_CHECK_INTERVAL": "0"}
    return run_gateway(env, ALIASES)


def post(gateway: RunningGateway, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(gateway.v1 + "/chat/completions", json=body, headers=headers, timeout=30)


def stats(gateway: RunningGateway) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(gateway.url + "/api/routing/stats", timeout=10).json()
    return body


def test_a_500_fails_over_to_the_next_provider(gateway: RunningGateway, upstreams: Upstreams) -> None:
    upstreams["openai"].fail_next_status(500, "upstream exploded")
    response = post(gateway, chat())
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello from anthropic"
    assert response.headers["x-ailb-deployment"] == "anthropic"
    assert response.headers["x-ailb-attempts"] == "2"
    assert response.headers["x-ailb-strategy"] == "failover"
    assert upstreams.openai.chat_calls == 1 and upstreams.anthropic.chat_calls == 1
    deployments = stats(gateway)["deployments"]
    assert deployments["openai"]["failures"] == 1 and deployments["anthropic"]["successes"] == 1


def test_a_400_goes_straight_back_to_the_client(gateway: RunningGateway, upstreams: Upstreams) -> None:
    upstreams["openai"].fail_next_status(400, "temperature is out of range")
    response = post(gateway, chat())
    assert response.status_code == 400
    assert "temperature is out of range" in response.json()["error"]["message"]
    assert upstreams.anthropic.chat_calls == 0
    assert stats(gateway)["deployments"]["openai"]["circuit"]["state"] == "closed"


def test_a_401_marks_the_deployment_misconfigured(gateway: RunningGateway, upstreams: Upstreams) -> None:
    upstreams["openai"].fail_next_status(401, "Incorrect API key provided")
    response = post(gateway, chat())
    assert response.status_code == 200 and response.headers["x-ailb-deployment"] == "anthropic"
    response = post(gateway, chat("gpt-4o"))  # only openai serves it
    assert response.status_code == 502
    error = response.json()["error"]
    assert "'openai'" in error["message"] and "misconfigured" in error["message"]
    assert OPENAI_KEY not in response.text
    assert upstreams.openai.chat_calls == 1
    health = httpx.get(gateway.url + "/healthz", timeout=10).json()
    assert health["deployments"]["openai"]["up"] is False and health["status"] == "degraded"


def test_every_circuit_open_answers_503_at_once(run_gateway: GatewayFactory, upstreams: Upstreams) -> None:
    upstreams.reset()
    env = {**upstreams.env(), "HEALTH_CHECK_INTERVAL": "0", "CIRCUIT_FAILURE_THRESHOLD": "1", "CIRCUIT_COOLDOWN": "30"}
    gateway = run_gateway(env)
    upstreams.openai.fail_always(Fault.status(503))
    try:
        assert post(gateway, chat("gpt-4o")).status_code == 502
        calls = upstreams.openai.chat_calls
        started = time.monotonic()
        response = post(gateway, chat("gpt-4o"))
        assert time.monotonic() - started < 2.0
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "no_deployment_available"
        assert 25 <= int(response.headers["Retry-After"]) <= 30
        assert upstreams.openai.chat_calls == calls
    finally:
        upstreams.openai.clear_faults()


def test_retry_after_from_a_429_holds_the_deployment(gateway: RunningGateway, upstreams: Upstreams) -> None:
    upstreams.openai.fail_next(Fault.status(429, headers={"Retry-After": "40"}))
    response = post(gateway, chat())
    assert response.status_code == 200 and response.headers["x-ailb-deployment"] == "anthropic"
    circuit = stats(gateway)["deployments"]["openai"]["circuit"]
    assert circuit["state"] == "open" and 35 <= circuit["retry_in_seconds"] <= 40
    assert post(gateway, chat()).headers["x-ailb-deployment"] == "anthropic"
    assert upstreams.openai.chat_calls == 1


def test_a_stream_fails_over_before_its_first_content(gateway: RunningGateway, upstreams: Upstreams) -> None:
    upstreams.openai.fail_next(Fault.drop())
    with httpx.stream("POST", gateway.v1 + "/chat/completions", json=chat(stream=True), timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["x-ailb-deployment"] == "anthropic"
        assert response.headers["x-ailb-attempts"] == "2"
        body = "".join(response.iter_text())
    assert "Hello" in body and "from" in body and "anthropic" in body
    assert body.rstrip().endswith("data: [DONE]")
    assert "event: error" not in body


def test_a_slow_first_token_times_out_and_fails_over(run_gateway: GatewayFactory, upstreams: Upstreams) -> None:
    upstreams.reset()
    config = f"""
deployments:
  - name: slow
    provider: openai
    base_url: {upstreams.openai.base_url}
    api_key: {OPENAI_KEY}
    models: [gpt-4o]
    priority: -1
    timeouts: {{first_token: 0.5, total: 0.5}}
  - name: openai  # a file that lists deployments is authoritative: the env-configured one is named here
    provider: openai
    base_url: ${{OPENAI_BASE_URL}}
    api_key: ${{OPENAI_API_KEY}}
    models: [gpt-4o]
model_aliases:
  smart: [gpt-4o]
"""
    gateway = run_gateway({**upstreams.env(), "ROUTING_STRATEGY": "failover", "HEALTH_CHECK_INTERVAL": "0"}, config)
    upstreams.openai.fail_next(Fault.hang(3))
    response = post(gateway, chat())
    assert response.status_code == 200, response.text
    assert response.headers["x-ailb-deployment"] == "openai" and response.headers["x-ailb-attempts"] == "2"
    assert "timed out" in stats(gateway)["deployments"]["slow"]["last_error"]["message"]


def test_the_strategy_can_be_chosen_per_request(gateway: RunningGateway, upstreams: Upstreams) -> None:
    seen = {post(gateway, chat(), {"X-AILB-Strategy": "round_robin"}).headers["x-ailb-deployment"] for _ in range(6)}
    assert seen == {"openai", "anthropic", "ollama"}
    response = post(gateway, chat(routing_strategy="failover"))
    assert response.headers["x-ailb-strategy"] == "failover" and response.headers["x-ailb-deployment"] == "openai"
    assert "routing_strategy" not in upstreams.openai.chat_requests[-1].json
    bad = post(gateway, chat(), {"X-AILB-Strategy": "fastest"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "routing_strategy"


def test_ollama_models_are_discovered_and_listed_with_aliases(gateway: RunningGateway) -> None:
    models = httpx.get(gateway.v1 + "/models", timeout=10).json()["data"]
    owners = {m["id"]: m["owned_by"] for m in models}
    assert owners["llama3.2:latest"] == "ollama" and owners["gpt-4o"] == "openai"
    assert owners["smart"] == "ailb"
    response = post(gateway, chat("llama3.2"))  # Ollama's short name for llama3.2:latest
    assert response.status_code == 200 and response.headers["x-ailb-deployment"] == "ollama"


def test_stats_report_tokens_cost_and_latency(gateway: RunningGateway) -> None:
    assert post(gateway, chat("gpt-4o")).status_code == 200
    body = stats(gateway)
    assert body["strategy"] == "failover"
    openai = body["deployments"]["openai"]
    assert openai["requests"] == 1 and openai["tokens"]["input"] > 0 and openai["tokens"]["output"] > 0
    assert openai["cost_usd"] > 0
    assert openai["latency"]["ewma_ms"] is not None and openai["latency"]["p95_ms"] is not None
    assert openai["weight"] == {"config": 1.0, "traffic": 100, "effective": 1.0}
    assert body["deployments"]["ollama"]["models"] == ["llama3.2:latest"]
    assert OPENAI_KEY not in httpx.get(gateway.url + "/api/routing/stats", timeout=10).text
