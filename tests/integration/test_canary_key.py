"""The canary sweep: every error path an upstream can trigger, and not one byte of a secret leaves the gateway.

Deployments of all three kinds hold a distinctive key; the gateway also has a client key and an admin token.
Each fake quotes back the key it received wherever it can (HTTP error answers, in-stream errors, malformed
output, health probes) and echoes all three secrets in answers. The canaries must appear in no response body,
header, SSE event, stats, metrics or health answer, and in no log line.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator

import grpc
import httpx
import orjson
import pytest

from ailb.control.generated import module_service_pb2 as pb
from ailb.observability.logging import configure_logging
from tests.fakes import FakeProvider, Fault, Reply
from tests.integration.canary_support import (
    CANARY,
    GATEWAY_ENV,
    KINDS,
    Fakes,
    canary_fakes,
    chat,
    config_yaml,
    leaks,
    post_stream,
    reset,
)
from tests.integration.conftest import GatewayFactory
from tests.integration.control_support import Control
from tests.integration.harness import RunningGateway

CLIENT_KEY = "team-canary-client-key-5e8d"
ADMIN_TOKEN = "admin-canary-token-9b41c7"
SECRETS = (CANARY, CLIENT_KEY, ADMIN_TOKEN)
Script = Callable[[FakeProvider], None]


def faults(*queued: Fault) -> Script:
    return lambda fake: fake.fail_next(*queued)


def reply(answer: str | Reply) -> Script:
    def script(fake: FakeProvider) -> None:
        fake.reply = answer

    return script


def escaped_echo(fake: FakeProvider) -> None:
    fake.reply = f"echo {CANARY}"
    fake.rewrite = lambda raw: raw.replace(b"sk-", b"\\u0073k-").replace(b"-7f3a", b"\\u002d7f3a")


ECHO = f"{CANARY} {CLIENT_KEY.upper()} {ADMIN_TOKEN}"
# (what the upstream does, whether the client streams)
SCENARIOS: dict[str, tuple[Script, bool]] = {
    "400 quoting the key": (faults(Fault.status(400, quote_key=True)), False),
    "401 quoting the key": (faults(Fault.status(401, quote_key=True)), False),
    "403 quoting the key, streamed": (faults(Fault.status(403, quote_key=True)), True),
    "429 quoting the key": (faults(Fault.status(429, quote_key=True)), False),
    "500 quoting the key": (faults(Fault.status(500, quote_key=True)), False),
    "503 quoting the key, streamed": (faults(Fault.status(503, quote_key=True)), True),
    "in-stream error after content": (faults(Fault.error_event(2, quote_key=True)), True),
    "in-stream error before content": (faults(Fault.error_event(0, quote_key=True)), True),
    "error event on a plain request": (faults(Fault.error_event(quote_key=True)), False),
    "malformed answer quoting the key": (faults(Fault.malformed(quote_key=True)), False),
    "malformed stream quoting the key": (faults(Fault.malformed(1, quote_key=True)), True),
    "stream dropped mid-way": (faults(Fault.drop_mid_stream(1)), True),
    "no first token in time": (faults(Fault.hang(4)), True),
    "answer echoing every secret": (reply(ECHO), False),
    "stream echoing every secret": (reply(ECHO), True),
    "stream splitting the key": (reply(Reply(pieces=["k=", CANARY[:7], CANARY[7:19].upper(), CANARY[19:]])), True),
    "answer with an escaped key": (escaped_echo, False),
    "stream with an escaped key": (escaped_echo, True),
}


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with canary_fakes() as running:
        yield running


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)


class Exposure:
    """Everything the gateway showed the outside world: per place, the status and the headers and body as text."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[int, str, str]] = {}

    def add(self, where: str, response: httpx.Response, text: str | None = None) -> None:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        self.seen[where] = (response.status_code, headers, response.text if text is None else text)

    def leaked(self) -> list[str]:
        return [
            where
            for where, (_status, headers, body) in self.seen.items()
            for secret in SECRETS
            if leaks(headers, secret) or leaks(body, secret)
        ]


def run_scenarios(gateway: RunningGateway, http: httpx.Client, fakes: Fakes, kind: str) -> Exposure:
    seen = Exposure()
    url = gateway.v1 + "/chat/completions"
    for name, (script, stream) in SCENARIOS.items():
        script(fakes[kind])
        if stream:
            response, text = post_stream(http, url, chat(kind, stream=True))
            seen.add(name, response, text)
        else:
            seen.add(name, http.post(url, json=chat(kind)))
        reset(fakes)
        gateway.call(gateway.gateway.runtime.router.check_now())  # close the circuits the scenario opened
    return seen


@pytest.mark.parametrize("kind", KINDS)
def test_no_secret_leaves_the_gateway_on_any_error_path(
    run_gateway: GatewayFactory, fakes: Fakes, logs: io.StringIO, kind: str
) -> None:
    reset(fakes)
    env = {**GATEWAY_ENV, "AILB_API_KEYS": CLIENT_KEY, "AILB_ADMIN_TOKEN": ADMIN_TOKEN}
    gateway = run_gateway(env, config_yaml(fakes))
    configure_logging("debug", redactor=gateway.gateway.redactor, stream=logs)
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {CLIENT_KEY}"}) as http:
        seen = run_scenarios(gateway, http, fakes, kind)
        fakes[kind].probe_fault = Fault.status(500, quote_key=True)
        gateway.call(gateway.gateway.runtime.router.check_now())
        fakes[kind].probe_fault = None
        for path in ("/api/routing/stats", "/metrics", "/healthz", "/v1/models"):
            seen.add(path, http.get(gateway.url + path))
        seen.add("admin, wrong token", http.get(gateway.v1 + "/rag/collections"))
    assert seen.leaked() == []
    assert len(seen.seen) == len(SCENARIOS) + 5
    logged = logs.getvalue()
    assert [s for s in SECRETS if leaks(logged, s)] == []
    # The upstreams' words did reach the log (masked), so the sweep really went through those paths.
    assert "Incorrect API key provided: ****" in logged
    assert "failed its health check" in logged


@pytest.mark.parametrize("kind", KINDS)
def test_the_sweep_reaches_every_path(run_gateway: GatewayFactory, fakes: Fakes, kind: str) -> None:
    """Each scenario ends the way it should (a sweep that saw only successes would prove nothing)."""
    reset(fakes)
    gateway = run_gateway(dict(GATEWAY_ENV), config_yaml(fakes))
    with httpx.Client(timeout=30) as http:
        seen = run_scenarios(gateway, http, fakes, kind).seen
    statuses = {name: status for name, (status, _headers, _body) in seen.items()}
    assert statuses == {**STATUSES, **EXPECTED_STATUS.get(kind, {})}
    for name in ("in-stream error after content", "malformed stream quoting the key", "stream dropped mid-way"):
        assert "event: error" in seen[name][2] and "[DONE]" not in seen[name][2]
    assert "****" in seen["stream splitting the key"][2]
    answer = orjson.loads(seen["answer echoing every secret"][2])["choices"][0]["message"]["content"]
    assert answer == f"**** {CLIENT_KEY.upper()} {ADMIN_TOKEN}"  # here only the provider key is configured


STATUSES = {
    "400 quoting the key": 400,
    "401 quoting the key": 502,
    "403 quoting the key, streamed": 502,
    "429 quoting the key": 429,
    "500 quoting the key": 502,
    "503 quoting the key, streamed": 502,
    "in-stream error after content": 200,
    "in-stream error before content": 502,
    "error event on a plain request": 502,
    "malformed answer quoting the key": 502,
    "malformed stream quoting the key": 200,
    "stream dropped mid-way": 200,
    "no first token in time": 504,
    "answer echoing every secret": 200,
    "stream echoing every secret": 200,
    "stream splitting the key": 200,
    "answer with an escaped key": 200,
    "stream with an escaped key": 200,
}
EXPECTED_STATUS: dict[str, dict[str, int]] = {}


@pytest.mark.parametrize("kind", KINDS)
def test_no_secret_leaves_through_the_control_plane(run_gateway: GatewayFactory, fakes: Fakes, kind: str) -> None:
    """After the sweep has filled every deployment's statistics with the upstreams' hostile error texts, the gRPC
    replies (status, routes, metrics) and a refused call's error details show none of the secrets."""
    reset(fakes)
    env = {
        **GATEWAY_ENV,
        "AILB_API_KEYS": CLIENT_KEY,
        "AILB_ADMIN_TOKEN": ADMIN_TOKEN,
        "ENABLE_GRPC": "true",
        "GRPC_PORT": "0",
        "HOST": "127.0.0.1",
    }
    gateway = run_gateway(env, config_yaml(fakes))
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {CLIENT_KEY}"}) as http:
        run_scenarios(gateway, http, fakes, kind)
    fakes[kind].probe_fault = Fault.status(500, quote_key=True)
    gateway.call(gateway.gateway.runtime.router.check_now())
    fakes[kind].probe_fault = None
    control = Control(gateway, token=ADMIN_TOKEN)
    wrong = Control(gateway, token=CLIENT_KEY.upper())
    try:
        replies = [
            str(control.GetStatus(pb.StatusRequest())),
            str(control.GetRoutes(pb.RoutesRequest())),
            str(control.GetMetrics(pb.MetricsRequest())),
        ]
        with pytest.raises(grpc.RpcError) as refused:
            wrong.GetStatus(pb.StatusRequest())
        replies.append(f"{refused.value.code()} {refused.value.details()}")
    finally:
        control.close()
        wrong.close()
    assert refused.value.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
    assert f"{kind}-canary" in replies[1]  # the routes reply describes the deployment the sweep went through
    assert [s for s in SECRETS for text in replies if leaks(text, s)] == []
