"""Hostile requests over real sockets: client-supplied credentials and endpoints, unbounded ``max_tokens``,
trailing-slash redirects, abandoned uploads, open stats and metrics, and 503s without ``Retry-After``."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import httpx
import openai
import pytest

from tests.fakes import Fault
from tests.integration.conftest import GatewayFactory
from tests.integration.harness import RunningGateway
from tests.integration.surfaces_support import openai_client
from tests.integration.upstreams import OPENAI_KEY, Upstreams
from tests.ports import free_port

MESSAGES = [{"role": "user", "content": "hello"}]
CLIENT_KEY = "sk-client-hardening-0001"
ADMIN_TOKEN = "admin-hardening-token-0001"
METRICS_TOKEN = "metrics-hardening-token-0001"
CLIENT_CONFIG = {
    "api_key": "sk-attacker",
    "api_base": "http://attacker.example/v1",
    "base_url": "http://attacker.example/v1",
    "extra_headers": {"Authorization": "Bearer sk-attacker"},
    "headers": {"X-Forwarded-Host": "attacker.example"},
    "organization": "org-attacker",
    "project": "proj-attacker",
    "extra_body": {"api_key": "sk-attacker"},
    "default_headers": {"Authorization": "Bearer sk-attacker"},
    "api_version": "2024-02-01",
    "deployment_id": "attacker-deployment",
    "azure_ad_token": "eyJ-attacker",
    "timeout": 1,
    "max_retries": 50,
    "API-Key": "sk-attacker",
}


@pytest.fixture
def gateway(run_gateway: GatewayFactory, upstreams: Upstreams) -> RunningGateway:
    upstreams.reset()
    return run_gateway(upstreams.env())


def _only_yaml(upstreams: Upstreams) -> dict[str, str]:
    """No env-configured deployment: the config file's deployments reach the OpenAI fake through these."""
    return {"UPSTREAM_URL": upstreams.openai.base_url, "UPSTREAM_KEY": OPENAI_KEY}


@pytest.mark.parametrize(("field", "value"), list(CLIENT_CONFIG.items()))
def test_client_credentials_and_endpoints_never_reach_the_upstream(
    gateway: RunningGateway, upstreams: Upstreams, field: str, value: Any
) -> None:
    before = len(upstreams.openai.chat_requests)
    with pytest.raises(openai.BadRequestError) as refused:
        openai_client(gateway).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_body={field: value}
        )
    error = refused.value.body
    assert isinstance(error, dict) and error["param"] == field and error["code"] == "unsupported_parameter"
    assert len(upstreams.openai.chat_requests) == before


def test_unknown_openai_parameters_still_pass_through(gateway: RunningGateway, upstreams: Upstreams) -> None:
    new_fields = {"reasoning_effort": "low", "metadata": {"team": "a"}, "a_future_parameter": {"x": 1}}
    reply = openai_client(gateway).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_body=new_fields
    )
    assert reply.choices[0].message.content
    received = upstreams.openai.chat_requests[-1].json
    assert {k: received[k] for k in new_fields} == new_fields
    assert not {"api_key", "base_url", "api_base"} & set(received)


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_beyond_every_deployment_is_a_400(
    gateway: RunningGateway, upstreams: Upstreams, param: str
) -> None:
    before = upstreams.total_chat_calls()
    with pytest.raises(openai.BadRequestError) as refused:
        openai_client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **{param: 1_000_000_000})
    error = refused.value.body
    assert isinstance(error, dict) and error["param"] == param and "16384" in error["message"]
    assert upstreams.total_chat_calls() == before
    reply = openai_client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **{param: 16384})
    assert reply.choices[0].message.content


CAPPED = """
deployments:
  - {name: small, provider: openai, base_url: "${UPSTREAM_URL}", api_key: "${UPSTREAM_KEY}",
     models: [gpt-4o-mini], max_output_tokens: 1000}
  - {name: large, provider: openai, base_url: "${UPSTREAM_URL}", api_key: "${UPSTREAM_KEY}",
     models: [gpt-4o-mini], max_output_tokens: 8000}
"""


def test_a_request_goes_only_where_its_max_tokens_is_allowed(run_gateway: GatewayFactory, upstreams: Upstreams) -> None:
    upstreams.reset()
    gateway = run_gateway({**_only_yaml(upstreams), "ROUTING_STRATEGY": "round_robin"}, CAPPED)
    client = openai_client(gateway)
    served = set()
    for _ in range(6):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5000)
        served.add(raw.headers["x-ailb-deployment"])
    assert served == {"large"}
    small_too = {
        client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES, max_tokens=500
        ).headers["x-ailb-deployment"]
        for _ in range(4)
    }
    assert small_too == {"small", "large"}
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=9000)
    assert isinstance(refused.value.body, dict) and "8000" in refused.value.body["message"]


def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_callers_host(gateway: RunningGateway) -> None:
    for method, path in (("POST", "/v1/chat/completions/"), ("GET", "/healthz/"), ("GET", "/v1/models/")):
        request = f"{method} {path} HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as client:
            client.sendall(request.encode())
            response = b""
            while chunk := client.recv(65536):
                response += chunk
        head, _, body = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 404 "), head
        assert b"location" not in head.lower() and b"evil.example" not in response
        assert b'"error"' in body


def test_an_abandoned_upload_is_a_client_disconnect_not_a_500(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 5000\r\n\r\n"
    )
    with caplog.at_level(logging.INFO):
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as client:
            client.sendall(head + b'{"model"')
        deadline = time.monotonic() + 5
        while b'status="499"' not in gateway.gateway.metrics.render()[0] and time.monotonic() < deadline:
            time.sleep(0.02)
    assert b'status="499"' in gateway.gateway.metrics.render()[0]
    assert b'status="500"' not in gateway.gateway.metrics.render()[0]
    lines = [r for r in caplog.records if "connection closed" in r.getMessage()]
    assert len(lines) == 1 and "8 of 5000" in lines[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


GUARDED = """
deployments:
  - {name: flaky, provider: openai, base_url: "${UPSTREAM_URL}", api_key: "${UPSTREAM_KEY}", models: [gpt-4o]}
"""


def test_routing_stats_need_a_client_key_and_keep_errors_short(
    run_gateway: GatewayFactory, upstreams: Upstreams
) -> None:
    upstreams.reset()
    gateway = run_gateway({**_only_yaml(upstreams), "AILB_API_KEYS": CLIENT_KEY}, GUARDED)
    upstreams.openai.fail_always(Fault.status(500, body=upstreams.openai.error_body(500, "boom " * 2000)))
    with pytest.raises(openai.APIStatusError):
        openai_client(gateway, CLIENT_KEY).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    upstreams.openai.clear_faults()
    stats_url = gateway.url + "/api/routing/stats"
    assert httpx.get(stats_url).status_code == 401
    assert httpx.get(stats_url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    stats = httpx.get(stats_url, headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert stats.status_code == 200
    message = stats.json()["deployments"]["flaky"]["last_error"]["message"]
    # AILB's own words only: the upstream's 10,000 characters of text stay in the (bounded) log line
    assert "flaky" in message and "boom" not in message and len(message) <= 300


def test_the_admin_token_guards_stats_and_metrics_token_guards_metrics(
    run_gateway: GatewayFactory, upstreams: Upstreams
) -> None:
    upstreams.reset()
    env = {
        **upstreams.env(),
        "AILB_API_KEYS": CLIENT_KEY,
        "AILB_ADMIN_TOKEN": ADMIN_TOKEN,
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    gateway = run_gateway(env)
    stats_url, metrics_url = gateway.url + "/api/routing/stats", gateway.url + "/metrics"
    assert httpx.get(stats_url, headers={"Authorization": f"Bearer {CLIENT_KEY}"}).status_code == 403
    assert httpx.get(stats_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
    for headers in ({}, {"Authorization": f"Bearer {CLIENT_KEY}"}, {"Authorization": f"Bearer {ADMIN_TOKEN}"}):
        refused = httpx.get(metrics_url, headers=headers)
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    scraped = httpx.get(metrics_url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status_code == 200 and "ailb_requests_total" in scraped.text


@pytest.mark.parametrize("stream", [False, True])
def test_every_503_for_unreachable_deployments_carries_retry_after(
    run_gateway: GatewayFactory, stream: bool
) -> None:
    port = free_port()
    down = f"""
deployments:
  - {{name: a, provider: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: sk-a, models: [gpt-4o]}}
  - {{name: b, provider: openai, base_url: "http://127.0.0.1:{port}/v2", api_key: sk-b, models: [gpt-4o]}}
"""
    gateway = run_gateway({"HEALTH_CHECK_INTERVAL": "0", "CIRCUIT_FAILURE_THRESHOLD": "5"}, down)
    body = {"model": "gpt-4o", "messages": MESSAGES, "stream": stream}
    for _ in range(3):  # the first answers come before any circuit has opened
        response = httpx.post(gateway.v1 + "/chat/completions", json=body, timeout=30)
        assert response.status_code == 503, response.text
        assert int(response.headers["retry-after"]) >= 1
