"""Per-key governance through the official OpenAI SDK against the real gateway and a wire-level OpenAI fake:
model scopes, rpm, tpm, budgets (reserved before sending, settled after, never overshot by concurrent
requests), ``GET /v1/usage``, metrics, reload and spend kept across a restart."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ailb.bootstrap import Gateway
from ailb.settings import ConfigError, load_settings
from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.script import Fault, Reply
from tests.fakes.threaded import ThreadedServer
from tests.integration.conftest import GatewayFactory
from tests.integration.harness import RunningGateway

UPSTREAM_KEY = "sk-governance-upstream-0001"
TEAM_KEY = "team-a-secret-key-0001"
OTHER_KEY = "team-b-secret-key-0002"
OPEN_KEY = "open-secret-key-0003"
PER_TOKEN = 0.001  # output_cost_per_1k: 1.0 and free prompts: a request costs $0.001 per completion token
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[ThreadedServer[OpenAIFake]]:
    with ThreadedServer(OpenAIFake(api_key=UPSTREAM_KEY)) as server:
        yield server


@pytest.fixture
def fake(upstream: ThreadedServer[OpenAIFake]) -> OpenAIFake:
    server = upstream.server
    server.clear_faults()
    server.reply = "one two"  # two completion tokens: $0.002
    server.latency = 0.0
    server.stream_chunk_delay = 0.0
    server.chat_calls = 0
    return server


def config(fake: OpenAIFake, client_keys: str) -> str:
    return f"""
deployments:
  - name: openai
    provider: openai
    base_url: {fake.base_url}
    api_key: {UPSTREAM_KEY}
    models: [gpt-4o, gpt-4o-mini]
    input_cost_per_1k: 0
    output_cost_per_1k: 1.0
model_aliases:
  fast: [gpt-4o-mini]
client_keys:
{client_keys}
"""


def start(run_gateway: GatewayFactory, fake: OpenAIFake, client_keys: str, **env: str) -> RunningGateway:
    return run_gateway({"HEALTH_CHECK_INTERVAL": "0", "AILB_API_KEYS": OPEN_KEY, **env}, config(fake, client_keys))


def client(gateway: RunningGateway, key: str = TEAM_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key=key, max_retries=0)


def ask(gateway: RunningGateway, key: str = TEAM_KEY, model: str = "fast", **kwargs: Any) -> Any:
    return client(gateway, key).chat.completions.create(model=model, messages=HI, **kwargs)


def usage(gateway: RunningGateway, key: str = TEAM_KEY) -> dict[str, Any]:
    body: dict[str, Any] = client(gateway, key).get("/usage", cast_to=object)
    return body


def metric(gateway: RunningGateway, name: str, **labels: str) -> float:
    text = httpx.get(gateway.url + "/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def test_a_key_sees_and_uses_only_its_models(run_gateway: GatewayFactory, fake: OpenAIFake) -> None:
    gateway = start(run_gateway, fake, f"  {TEAM_KEY}:\n    name: team-a\n    models: [gpt-4o-mini, fast]\n")
    team = client(gateway)
    assert sorted(m.id for m in team.models.list().data) == ["fast", "gpt-4o-mini"]
    assert team.models.retrieve("fast").id == "fast"
    with pytest.raises(openai.NotFoundError) as hidden:
        team.models.retrieve("gpt-4o")
    with pytest.raises(openai.NotFoundError) as unknown:
        team.models.retrieve("no-such-model")
    assert hidden.value.code == unknown.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError) as refused:
        ask(gateway, model="gpt-4o")
    with pytest.raises(openai.NotFoundError) as missing:
        ask(gateway, model="no-such-model")
    # refused exactly like a model that does not exist: nothing tells the key what else is served
    assert refused.value.message == missing.value.message.replace("no-such-model", "gpt-4o")
    refused_body, missing_body = refused.value.body, missing.value.body
    assert isinstance(refused_body, dict) and isinstance(missing_body, dict)
    assert {**refused_body, "message": ""} == {**missing_body, "message": ""}
    assert fake.chat_calls == 0
    assert ask(gateway, model="fast").choices[0].message.content == "one two"
    assert ask(gateway, model="gpt-4o-mini").choices[0].message.content == "one two"
    # a key listed only in AILB_API_KEYS is not limited
    listed = {m.id for m in client(gateway, OPEN_KEY).models.list().data}
    assert listed == {"gpt-4o", "gpt-4o-mini", "fast", "all-MiniLM-L6-v2"}  # the packaged embedding model too
    assert ask(gateway, OPEN_KEY, model="gpt-4o").choices[0].message.content == "one two"
    # both chat refusals count: to a scoped key, an unknown model is just one more model outside its scope
    assert metric(gateway, "ailb_key_rejections_total", key="team-a", reason="model") == 2


def test_over_rpm_is_a_429_with_retry_after(run_gateway: GatewayFactory, fake: OpenAIFake) -> None:
    gateway = start(run_gateway, fake, f"  {TEAM_KEY}:\n    name: team-a\n    rpm: 3\n")
    for _ in range(3):
        ask(gateway)
    with pytest.raises(openai.RateLimitError) as refused:
        ask(gateway)
    error = refused.value
    assert error.code == "rate_limit_exceeded"
    assert "3 requests per minute" in error.message
    assert 1 <= int(error.response.headers["retry-after"]) <= 20  # one request back every 20 s
    assert fake.chat_calls == 3
    assert ask(gateway, OPEN_KEY).choices  # other keys are not affected
    assert metric(gateway, "ailb_key_rejections_total", key="team-a", reason="rpm") == 1


def test_tpm_checks_the_prompt_before_and_counts_the_reported_tokens_after(
    run_gateway: GatewayFactory, fake: OpenAIFake
) -> None:
    gateway = start(run_gateway, fake, f"  {TEAM_KEY}:\n    name: team-a\n    tpm: 1000\n")
    fake.reply = Reply(text="a long answer", prompt_tokens=700, completion_tokens=400)
    ask(gateway)  # the prompt fits; the upstream reports 1,100 tokens used
    with pytest.raises(openai.RateLimitError) as refused:
        ask(gateway)
    assert refused.value.code == "rate_limit_exceeded" and "1000 tokens per minute" in refused.value.message
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 60
    assert fake.chat_calls == 1
    assert usage(gateway)["total_tokens"] == 1100


def test_a_prompt_larger_than_the_tpm_limit_is_refused_for_good(run_gateway: GatewayFactory, fake: OpenAIFake) -> None:
    gateway = start(run_gateway, fake, f"  {TEAM_KEY}:\n    name: team-a\n    tpm: 50\n")
    long_prompt = [{"role": "user", "content": "word " * 400}]
    with pytest.raises(openai.RateLimitError) as refused:
        client(gateway).chat.completions.create(model="fast", messages=long_prompt)  # type: ignore[arg-type]
    assert "larger than this API key's limit of 50 tokens per minute" in refused.value.message
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert fake.chat_calls == 0
    assert ask(gateway).choices  # a short prompt still passes


BUDGET_KEY = f"  {TEAM_KEY}:\n    name: team-a\n    max_budget_usd: 0.01\n    budget_period: 1d\n"


def test_spend_is_reserved_before_and_settled_after_each_request(run_gateway: GatewayFactory, fake: OpenAIFake) -> None:
    gateway = start(run_gateway, fake, BUDGET_KEY, CIRCUIT_FAILURE_THRESHOLD="10")
    ask(gateway, max_tokens=3)  # reserves $0.003, costs $0.002
    stream = client(gateway).chat.completions.create(model="fast", messages=HI, max_tokens=3, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "one two"
    fake.fail_next(Fault.status(500), Fault.status(500), Fault.status(500))
    with pytest.raises(openai.APIStatusError):
        ask(gateway, max_tokens=3)  # failed: its reservation goes back
    report = usage(gateway)
    assert report["spend_usd"] == pytest.approx(0.004) and report["reserved_usd"] == 0
    assert (report["requests"], report["completion_tokens"]) == (3, 4)
    assert report["remaining_usd"] == pytest.approx(0.006)
    ask(gateway, max_tokens=3)
    ask(gateway, max_tokens=3)  # $0.008 spent: $0.002 left, less than the $0.003 a request may cost
    with pytest.raises(openai.RateLimitError) as refused:
        ask(gateway, max_tokens=3)
    error = refused.value
    period_end = usage(gateway)["period_end"]
    reset = datetime.fromtimestamp(period_end, UTC)
    assert error.code == "insufficient_quota"
    assert f"resets at {reset:%Y-%m-%dT%H:%M:%SZ}" in error.message
    assert error.response.headers["x-should-retry"] == "false"
    assert 1 <= int(error.response.headers["retry-after"]) <= 86400
    assert metric(gateway, "ailb_key_spend_usd_total", key="team-a") == pytest.approx(0.008)
    assert metric(gateway, "ailb_key_rejections_total", key="team-a", reason="budget") == 1


def test_a_stream_cut_off_mid_way_settles_what_was_sent(run_gateway: GatewayFactory, fake: OpenAIFake) -> None:
    gateway = start(run_gateway, fake, BUDGET_KEY)
    fake.reply = "alpha beta gamma delta epsilon"
    fake.fail_next(Fault.drop_mid_stream(after_chunks=2))
    received = []
    with pytest.raises(openai.APIError):
        for chunk in client(gateway).chat.completions.create(model="fast", messages=HI, max_tokens=8, stream=True):
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(received) == "alpha beta"
    report = usage(gateway)
    # the upstream reported nothing: "alpha beta" is estimated at 3 tokens and the prompt at its count
    assert report["completion_tokens"] == 3 and report["prompt_tokens"] > 0
    assert report["spend_usd"] == pytest.approx(3 * PER_TOKEN) and report["reserved_usd"] == 0


def test_twenty_concurrent_requests_cannot_overshoot_a_nearly_spent_budget(
    run_gateway: GatewayFactory, fake: OpenAIFake
) -> None:
    gateway = start(run_gateway, fake, f"  {TEAM_KEY}:\n    name: team-a\n    max_budget_usd: 0.02\n")
    for _ in range(6):  # 6 × $0.002: $0.008 left, room for exactly four reservations of $0.002
        ask(gateway, max_tokens=2)
    fake.latency = 0.5  # every admitted request is still in flight when the budget runs out
    barrier = threading.Barrier(20)

    def one(_: int) -> str:
        barrier.wait()
        try:
            ask(gateway, max_tokens=2)
        except openai.RateLimitError as exc:
            return str(exc.code)
        return "ok"

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(one, range(20)))
    assert outcomes.count("ok") == 4
    assert outcomes.count("insufficient_quota") == 16
    assert fake.chat_calls == 6 + 4
    report = usage(gateway)
    assert report["spend_usd"] == pytest.approx(0.02) and report["spend_usd"] <= 0.02 + 1e-9
    assert report["reserved_usd"] == 0


def test_usage_answers_the_callers_own_key(run_gateway: GatewayFactory, fake: OpenAIFake) -> None:
    keys = (
        f"  {TEAM_KEY}:\n    name: team-a\n    models: [fast]\n    rpm: 600\n    tpm: 200000\n"
        f"    max_budget_usd: 50\n    budget_period: 30d\n"
        f"  {OTHER_KEY}:\n    name: team-b\n    max_budget_usd: 5\n"
    )
    gateway = start(run_gateway, fake, keys)
    ask(gateway, max_tokens=5)
    team = usage(gateway)
    assert team["object"] == "usage" and team["name"] == "team-a" and team["metered"] is True
    assert team["period"] == "30d" and team["period_end"] - team["period_start"] == 30 * 86400
    assert team["spend_usd"] == pytest.approx(0.002) and team["budget_usd"] == 50
    assert (team["requests"], team["prompt_tokens"], team["completion_tokens"]) == (1, 1, 2)
    assert team["limits"] == {"rpm": 600, "tpm": 200000, "max_budget_usd": 50, "budget_period": "30d",
                              "models": ["fast"]}  # fmt: skip
    other = usage(gateway, OTHER_KEY)
    assert (other["name"], other["spend_usd"], other["requests"]) == ("team-b", 0, 0)
    unmetered = usage(gateway, OPEN_KEY)
    assert unmetered["metered"] is False and unmetered["spend_usd"] is None
    assert TEAM_KEY not in str(team) and OPEN_KEY not in str(unmetered)
    with pytest.raises(openai.AuthenticationError):
        usage(gateway, "not-a-key")
    assert httpx.get(gateway.v1 + "/usage").status_code == 401


def test_a_reload_applies_new_limits_to_the_next_request_and_keeps_spend(
    run_gateway: GatewayFactory, fake: OpenAIFake
) -> None:
    gateway = start(run_gateway, fake, BUDGET_KEY)
    ask(gateway, max_tokens=2)
    ask(gateway, max_tokens=2)
    assert usage(gateway)["spend_usd"] == pytest.approx(0.004)
    tighter = f"  {TEAM_KEY}:\n    name: team-a\n    models: [fast]\n    rpm: 1\n    max_budget_usd: 0.0095\n"
    Path(gateway.env["AILB_CONFIG"]).write_text(config(fake, tighter + "    budget_period: 1d\n"))
    ok, _ = gateway.call(gateway.gateway.reload())
    assert ok
    report = usage(gateway)
    assert report["spend_usd"] == pytest.approx(0.004)  # spend survived the reload
    assert report["limits"]["rpm"] == 1 and report["limits"]["max_budget_usd"] == 0.0095
    with pytest.raises(openai.NotFoundError):
        ask(gateway, model="gpt-4o-mini")  # the new model scope
    with pytest.raises(openai.RateLimitError) as over_budget:
        ask(gateway, max_tokens=6)  # $0.004 spent + up to $0.006 > the new $0.0095
    assert over_budget.value.code == "insufficient_quota"
    ask(gateway, max_tokens=2)  # fits, and takes the one request per minute
    with pytest.raises(openai.RateLimitError) as over_rpm:
        ask(gateway, max_tokens=2)  # $0.006 + $0.002 still fits the budget, but not the new rpm
    assert over_rpm.value.code == "rate_limit_exceeded"
    assert usage(gateway)["spend_usd"] == pytest.approx(0.006)


def test_spend_survives_a_restart(tmp_path: Path, fake: OpenAIFake) -> None:
    env = {"HEALTH_CHECK_INTERVAL": "0", "SPEND_PATH": str(tmp_path / "state" / "spend.sqlite3")}
    with RunningGateway(env, config(fake, BUDGET_KEY), workdir=tmp_path) as first:
        ask(first, max_tokens=3)
        ask(first, max_tokens=3)
    assert (tmp_path / "state" / "spend.sqlite3").exists()
    with RunningGateway(env, config(fake, BUDGET_KEY), workdir=tmp_path) as second:
        report = usage(second)
        assert report["spend_usd"] == pytest.approx(0.004) and report["requests"] == 2
        ask(second, max_tokens=3)
        assert usage(second)["spend_usd"] == pytest.approx(0.006)


def test_a_spend_file_in_use_stops_start_up_with_a_clear_error(tmp_path: Path, fake: OpenAIFake) -> None:
    env = {"HEALTH_CHECK_INTERVAL": "0", "SPEND_PATH": str(tmp_path / "spend.sqlite3")}
    with RunningGateway(env, config(fake, BUDGET_KEY), workdir=tmp_path) as running:
        second = Gateway(load_settings(running.env), running.env)

        async def start_second() -> None:
            try:
                await second.start(grpc=False)
            finally:
                await second.aclose()

        with pytest.raises(ConfigError, match=r"SPEND_PATH: .*another AILB process is using this file") as refused:
            asyncio.run(start_second())
        assert TEAM_KEY not in str(refused.value)
        assert usage(running)["metered"]  # the first one is unaffected
