"""``GET /metrics`` parsed with the Prometheus text parser; every value checked against what the test sent."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.script import Fault
from tests.integration.conftest import GatewayFactory
from tests.integration.control_support import (
    ALIAS,
    MODEL,
    Control,
    Fakes,
    chat,
    config_yaml,
    gateway_env,
    started_fakes,
)
from tests.integration.harness import RunningGateway

Samples = list[tuple[str, dict[str, str], float]]


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with started_fakes(["blue", "green"]) as running:
        yield running


@pytest.fixture
def gateway(run_gateway: GatewayFactory, fakes: Fakes) -> RunningGateway:
    return run_gateway(gateway_env(), config_yaml(fakes))


def scrape(http: httpx.Client, gateway: RunningGateway) -> Samples:
    response = http.get(gateway.url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items()))


def settled(http: httpx.Client, gateway: RunningGateway) -> Samples:
    """Streams are counted when their response closes, just after the client saw [DONE]: wait for that."""
    deadline = time.monotonic() + 10
    while True:
        samples = scrape(http, gateway)
        if total(samples, "ailb_active_requests") == 0 or time.monotonic() > deadline:
            return samples
        time.sleep(0.02)


def stream_usage(http: httpx.Client, gateway: RunningGateway) -> tuple[int, int]:
    payload = {
        "model": MODEL,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "count these five words"}],
    }
    usage = (0, 0)
    with http.stream("POST", gateway.v1 + "/chat/completions", json=payload) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: {"):
                chunk = orjson.loads(line[6:])
                if chunk.get("usage"):
                    usage = (chunk["usage"]["prompt_tokens"], chunk["usage"]["completion_tokens"])
    assert usage != (0, 0)
    return usage


def test_metrics_match_the_requests_sent(gateway: RunningGateway, fakes: Fakes) -> None:
    calls_before = sum(f.server.chat_calls for f in fakes.values())
    prompt = completion = 0
    control = Control(gateway)
    try:
        with httpx.Client(timeout=30) as http:
            for _ in range(3):
                usage = chat(http, gateway).json()["usage"]
                prompt, completion = prompt + usage["prompt_tokens"], completion + usage["completion_tokens"]
            for _ in range(2):
                p, c = stream_usage(http, gateway)
                prompt, completion = prompt + p, completion + c
            assert chat(http, gateway, "model-nobody-serves").status_code == 404
            assert control.rate_limit(ALIAS, rps=1, burst=1).success
            usage = chat(http, gateway, ALIAS).json()["usage"]
            prompt, completion = prompt + usage["prompt_tokens"], completion + usage["completion_tokens"]
            assert chat(http, gateway, ALIAS).status_code == 429
            # one fault queued on each deployment: the next request fails once or twice and is retried
            for fake in fakes.values():
                fake.server.fail_next(Fault.status(500))
            usage = chat(http, gateway).json()["usage"]
            prompt, completion = prompt + usage["prompt_tokens"], completion + usage["completion_tokens"]
            samples = settled(http, gateway)
    finally:
        control.close()
        for fake in fakes.values():
            fake.server.clear_faults()

    upstream_calls = sum(f.server.chat_calls for f in fakes.values()) - calls_before
    failed_attempts = upstream_calls - 7
    assert failed_attempts in (1, 2)

    assert total(samples, "ailb_requests_total", model=MODEL, status="200") == 6
    assert total(samples, "ailb_requests_total", model=ALIAS, status="200") == 1
    assert total(samples, "ailb_requests_total", model=ALIAS, status="429", deployment="none") == 1
    assert total(samples, "ailb_requests_total", model="other", status="404", deployment="none") == 1
    assert total(samples, "ailb_requests_total") == 9
    assert {lab["deployment"] for n, lab, _ in samples if n == "ailb_requests_total" and lab["status"] == "200"} <= {
        "blue",
        "green",
    }
    assert "model-nobody-serves" not in {v for _, lab, _ in samples for v in lab.values()}

    assert total(samples, "ailb_request_duration_seconds_count") == 9
    assert total(samples, "ailb_time_to_first_token_seconds_count", model=MODEL) == 2
    assert total(samples, "ailb_gateway_overhead_seconds_count") == 9
    assert total(samples, "ailb_active_requests") == 0

    assert total(samples, "ailb_tokens_total", kind="prompt") == prompt
    assert total(samples, "ailb_tokens_total", kind="completion") == completion
    expected_cost = prompt / 1000 * 0.001 + completion / 1000 * 0.002
    assert total(samples, "ailb_cost_usd_total") == pytest.approx(expected_cost, rel=1e-6)

    assert total(samples, "ailb_upstream_attempts_total") == upstream_calls
    assert total(samples, "ailb_upstream_attempts_total", outcome="success") == 7
    assert total(samples, "ailb_upstream_attempts_total", outcome="error") == failed_attempts
    assert total(samples, "ailb_retries_total") == failed_attempts
    assert total(samples, "ailb_rate_limited_total", route=ALIAS) == 1
    assert total(samples, "ailb_deployment_up", deployment="blue") == 1
    assert total(samples, "ailb_deployment_up", deployment="green") == 1
