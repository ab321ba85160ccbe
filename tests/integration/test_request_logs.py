"""Structured logs and request ids end to end: `ailb serve` as a real process with ``LOG_FORMAT=json``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes import AnthropicFake, Fault, OpenAIFake, ThreadedServer
from tests.polling import wait_for_health
from tests.ports import free_port

OPENAI_KEY = "sk-logs-openai-key-0001"
ADMIN_TOKEN = "admin-token-for-logs-0001"
CONFIG = """
model_aliases:
  smart: [gpt-4o, claude-3-5-sonnet-latest]
"""


class Served:
    def __init__(self, process: subprocess.Popen[bytes], base: str, log: Path) -> None:
        self.process, self.base, self.log = process, base, log

    def entries(self) -> list[dict[str, Any]]:
        """Every line of the log so far, each parsed as JSON (a line that is not JSON fails the test)."""
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def wait_for(self, request_id: str, needle: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 10
        while True:
            found = [e for e in self.entries() if e.get("request_id") == request_id and needle in e["message"]]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Served, OpenAIFake]]:
    openai_fake, anthropic_fake = OpenAIFake(api_key=OPENAI_KEY), AnthropicFake(api_key="sk-ant-logs-key-0001")
    (tmp_path / "ailb.yaml").write_text(CONFIG)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        "ANTHROPIC_API_KEY": "sk-ant-logs-key-0001",
        "AILB_ADMIN_TOKEN": ADMIN_TOKEN,
        "AILB_CONFIG": str(tmp_path / "ailb.yaml"),
        "ENABLE_GRPC": "false",
        "ENABLE_MEMORY": "false",
        "HEALTH_CHECK_INTERVAL": "0",
        "HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
        "OPENAI_API_KEY": OPENAI_KEY,
        "ROUTING_STRATEGY": "failover",
    }
    log = tmp_path / "ailb.log"
    with ThreadedServer(openai_fake), ThreadedServer(anthropic_fake), log.open("wb") as sink:
        env["OPENAI_BASE_URL"], env["ANTHROPIC_BASE_URL"] = openai_fake.base_url, anthropic_fake.base_url
        process = subprocess.Popen([sys.executable, "-m", "ailb", "serve"], env=env, stderr=sink, stdout=sink)
        served = Served(process, f"http://127.0.0.1:{port}", log)
        try:
            wait_for_health(served.base, process, 60, log.read_text)
            yield served, openai_fake
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def chat() -> dict[str, Any]:
    return {"model": "smart", "messages": [{"role": "user", "content": "Say hello"}]}


def test_a_failover_warning_carries_the_clients_request_id(served: tuple[Served, OpenAIFake]) -> None:
    gateway, openai_fake = served
    openai_fake.fail_next(Fault.status(500, body=openai_fake.error_body(500, f"boom with {OPENAI_KEY}")))
    response = httpx.post(gateway.base + "/v1/chat/completions", json=chat(), headers={"x-request-id": "req-42:a.b_c"})
    assert response.status_code == 200 and response.headers["x-ailb-attempts"] == "2"
    assert response.headers["x-request-id"] == "req-42:a.b_c"

    (warning,) = gateway.wait_for("req-42:a.b_c", "deployment openai failed")
    assert warning["level"] == "warning" and warning["logger"] == "ailb.routing"
    assert set(warning) >= {"timestamp", "level", "logger", "message", "request_id"}
    assert "trace_id" not in warning  # tracing is off
    assert "boom with ****" in warning["message"] and OPENAI_KEY not in gateway.log.read_text()
    started = [e for e in gateway.entries() if "Application startup" in e["message"]]
    assert started and all("request_id" not in e for e in started)  # lines outside a request carry none


@pytest.mark.parametrize("sent", [None, "", "x" * 129, "spaces are unsafe", 'quote"d', "ünïcode"])
def test_a_missing_or_unsafe_request_id_is_replaced(served: tuple[Served, OpenAIFake], sent: str | None) -> None:
    gateway, _ = served
    headers = {} if sent is None else {"x-request-id": sent.encode("utf-8")}
    response = httpx.post(gateway.base + "/v1/chat/completions", json=chat(), headers=headers)
    generated = response.headers["x-request-id"]
    assert generated != sent and len(generated) == 16 and int(generated, 16) >= 0
    again = httpx.post(gateway.base + "/v1/chat/completions", json=chat(), headers=headers)
    assert again.headers["x-request-id"] != generated


def test_every_answer_carries_a_request_id(served: tuple[Served, OpenAIFake]) -> None:
    gateway, _ = served
    base = gateway.base
    answers = [
        httpx.get(base + "/healthz"),
        httpx.get(base + "/v1/models"),
        httpx.get(base + "/api/routing/stats"),  # 401 without the admin token
        httpx.get(base + "/no/such/path"),
        httpx.post(base + "/v1/chat/completions", content=b"{not json", headers={"x-request-id": "bad-json-1"}),
        httpx.get(base + "/dashboard"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 401, 404, 400, 200]
    assert all(a.headers.get("x-request-id") for a in answers)
    assert answers[4].headers["x-request-id"] == "bad-json-1"
    body = {**chat(), "stream": True}
    with httpx.stream("POST", base + "/v1/chat/completions", json=body, headers={"x-request-id": "stream-1"}) as r:
        assert r.headers["x-request-id"] == "stream-1" and r.headers["content-type"].startswith("text/event-stream")
        assert r.read().endswith(b"data: [DONE]\n\n")
    max_length = "a" * 128
    assert httpx.get(base + "/healthz", headers={"x-request-id": max_length}).headers["x-request-id"] == max_length
