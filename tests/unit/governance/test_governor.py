"""Governance on the real router and ChatService with scripted providers: scopes, admission, reservation,
settlement (plain, streamed, cut off, failed, dropped) and the usage report."""

from __future__ import annotations

import asyncio
import logging
import math
import random
from typing import Any

import pytest

from ailb.contract import ChatCall, StreamChunk, Usage
from ailb.errors import ModelNotFoundError, QuotaExceededError, RateLimitedError, UpstreamConnectionError
from ailb.governance.governor import Governor
from ailb.governance.meter import Meter
from ailb.governance.periods import parse_period
from ailb.routing.router import Router
from ailb.service import ChatService
from ailb.settings import ClientKeyConfig
from ailb.state import Draw, InProcessLimitStore, Ledger
from ailb.tenancy import ClientKey, client_key
from tests.unit.routing.support import (
    ScriptedProvider,
    call,
    completion,
    config,
    content,
    final_chunk,
    role_chunk,
    settings,
    status_error,
)

NOW = 1_750_000_000.0
OUT_PER_TOKEN = 0.001  # output_cost_per_1k: 1.0; prompts are free so every figure below is exact


class KeyMetrics:
    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self.rejected: list[tuple[str, str]] = []

    def key_spent(self, key: str, usd: float) -> None:
        self.spent[key] = self.spent.get(key, 0.0) + usd

    def key_rejected(self, key: str, reason: str) -> None:
        self.rejected.append((key, reason))


class Setup:
    def __init__(self, *providers: ScriptedProvider, aliases: dict[str, tuple[str, ...]] | None = None) -> None:
        cfg = settings(*(p.config for p in providers), strategy="failover", aliases=aliases)
        self.router = Router(cfg, {p.config.name: p for p in providers}, rng=random.Random(1))
        self.store = InProcessLimitStore()
        self.metrics = KeyMetrics()
        self.governor = Governor(self.store, self.metrics, wall_clock=lambda: NOW)
        self.service = ChatService(self.router, None, None)

    def meter(self, key: ClientKey, model: str = "gpt-4o") -> Meter:
        meter = self.governor.meter(key, model)
        assert meter is not None
        return meter

    async def ledger(self, key: ClientKey) -> Ledger:
        await self.governor.drain()
        return await self.store.ledger(self.meter(key).ledger)


def provider(
    name: str = "a", out_per_1k: float = 1.0, max_output_tokens: int | None = None, **extra: Any
) -> ScriptedProvider:
    deployment = config(
        name, input_cost_per_1k=0.0, output_cost_per_1k=out_per_1k, max_output_tokens=max_output_tokens
    )
    return ScriptedProvider(deployment, **extra)


def key(**limits: Any) -> ClientKey:
    return client_key("team-key", ClientKeyConfig(key="team-key", name="team", **limits))


def chat(max_tokens: int | None = None, **extra: Any) -> ChatCall:
    body = {"max_tokens": max_tokens} if max_tokens is not None else {}
    return call(**body, **extra)


async def test_a_key_without_limits_is_not_metered_and_its_models_are_scoped() -> None:
    setup = Setup(provider())
    assert setup.governor.meter(client_key("plain"), "gpt-4o") is None
    scoped = client_key("k", ClientKeyConfig(key="k", name="scoped", models=frozenset({"fast"})))
    with pytest.raises(ModelNotFoundError) as refused:
        setup.governor.meter(scoped, "gpt-4o")
    assert str(refused.value) == str(ModelNotFoundError("gpt-4o"))  # the same words as an unknown model
    assert setup.governor.meter(scoped, "fast") is None
    assert setup.metrics.rejected == [("scoped", "model")]


async def test_a_plain_answer_reserves_the_most_it_can_cost_and_settles_what_was_reported() -> None:
    setup = Setup(provider(outcomes=[completion("hi", prompt=12, completion_tokens=7)]))
    team = key(max_budget_usd=1.0, tpm=1000)
    meter = setup.meter(team)
    await setup.service.complete(chat(max_tokens=50), meter)
    assert meter.reserved_usd == pytest.approx(50 * OUT_PER_TOKEN)
    ledger = await setup.ledger(team)
    assert ledger == Ledger(spent_usd=pytest.approx(7 * OUT_PER_TOKEN), reserved_usd=0.0, requests=1,
                            prompt_tokens=12, completion_tokens=7)  # fmt: skip
    assert setup.metrics.spent == {"team": pytest.approx(7 * OUT_PER_TOKEN)}


async def test_without_max_tokens_the_output_cap_of_the_dearest_deployment_is_reserved() -> None:
    # An OpenAI-compatible upstream asked without max_tokens may write up to the model's output cap.
    cheap, dear = provider("cheap", 1.0, max_output_tokens=2000), provider("dear", 3.0, max_output_tokens=5000)
    setup = Setup(cheap, dear)
    meter = setup.meter(key(max_budget_usd=1000.0))
    await setup.service.complete(chat(), meter)
    assert meter.reserved_usd == pytest.approx(3.0 * 5000 / 1000)


async def test_a_failed_request_gives_its_reservation_and_tokens_back() -> None:
    setup = Setup(provider(outcomes=[status_error("a", 500)]))
    team = key(max_budget_usd=1.0, tpm=1000)
    with pytest.raises(Exception, match="HTTP 500"):
        await setup.service.complete(chat(max_tokens=10), setup.meter(team))
    assert await setup.ledger(team) == Ledger(requests=1)
    # the prompt's estimate went back to the tpm bucket: it holds the whole limit again
    assert await setup.store.acquire([Draw("tpm:team", 1000, 1000 / 60, 1000)]) is None


async def test_a_budget_refusal_names_the_reset_time_and_tells_sdks_not_to_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ailb")
    setup = Setup(provider(outcomes=[completion("x", prompt=1, completion_tokens=8)]))
    team = key(max_budget_usd=0.01, budget_period=parse_period("1d"))
    await setup.service.complete(chat(max_tokens=8), setup.meter(team))  # spends 0.008
    with pytest.raises(QuotaExceededError) as refused:
        await setup.service.complete(chat(max_tokens=8), setup.meter(team))
    error = refused.value
    assert (error.status, error.code, error.type) == (429, "insufficient_quota", "insufficient_quota")
    assert "2025-06-16T00:00:00Z" in error.message  # the end of the UTC day holding NOW
    assert error.headers["x-should-retry"] == "false"
    assert int(error.headers["Retry-After"]) == math.ceil(1_750_032_000 - NOW)
    assert setup.metrics.rejected == [("team", "budget")]
    logged = [r.getMessage() for r in caplog.records if r.name == "ailb.governance"]
    assert logged == ["key team has used its budget for the period; refusing requests until 2025-06-16T00:00:00Z"]
    assert "team-key" not in caplog.text


async def test_rpm_and_tpm_refusals_carry_retry_after() -> None:
    setup = Setup(provider())
    team = key(rpm=2)
    for _ in range(2):
        await setup.service.complete(chat(), setup.meter(team))
    with pytest.raises(RateLimitedError) as refused:
        await setup.service.complete(chat(), setup.meter(team))
    assert refused.value.code == "rate_limit_exceeded" and 1 <= int(refused.value.headers["Retry-After"]) <= 30
    assert "2 requests per minute" in refused.value.message

    tiny = client_key("t", ClientKeyConfig(key="t", name="tiny", tpm=3))
    with pytest.raises(RateLimitedError) as too_large:
        await setup.service.complete(chat(), setup.meter(tiny))
    assert too_large.value.headers["x-should-retry"] == "false"
    assert "larger than this API key's limit of 3 tokens per minute" in too_large.value.message
    assert setup.metrics.rejected == [("team", "rpm"), ("tiny", "tpm")]


async def test_tpm_counts_the_reported_tokens_after_the_answer() -> None:
    setup = Setup(provider(outcomes=[completion("x", prompt=600, completion_tokens=500)]))
    team = key(tpm=1000)
    await setup.service.complete(chat(), setup.meter(team))  # the estimate was a few tokens; 1100 were used
    await setup.governor.drain()
    with pytest.raises(RateLimitedError, match="1000 tokens per minute"):
        await setup.service.complete(chat(), setup.meter(team))


async def test_a_stream_settles_its_reported_usage() -> None:
    streamed = provider(streams=[[role_chunk(), content("alpha"), content(" beta"), final_chunk(9, 2)]])
    setup = Setup(streamed)
    team = key(max_budget_usd=1.0)
    result = await setup.service.stream(chat(max_tokens=20, stream=True), setup.meter(team))
    assert [c.text async for c in result.chunks] == ["", "alpha", " beta", ""]
    assert await setup.ledger(team) == Ledger(spent_usd=pytest.approx(2 * OUT_PER_TOKEN), requests=1,
                                              prompt_tokens=9, completion_tokens=2)  # fmt: skip


async def test_a_stream_settles_the_usage_of_chunks_taken_at_hand() -> None:
    whole = StreamChunk(b"data: all\n\n", "alpha beta", has_content=True, usage=Usage(9, 2), finish_reason="stop")
    setup = Setup(provider(streams=[[role_chunk(), whole]]))
    team = key(max_budget_usd=1.0)
    chunks: Any = (await setup.service.stream(chat(max_tokens=20, stream=True), setup.meter(team))).chunks
    assert (await anext(chunks)).text == ""
    assert chunks.ready() == [whole]  # as the SSE writer takes what is at hand, past __anext__
    assert [c async for c in chunks] == []
    assert await setup.ledger(team) == Ledger(spent_usd=pytest.approx(2 * OUT_PER_TOKEN), requests=1,
                                              prompt_tokens=9, completion_tokens=2)  # fmt: skip


async def test_a_stream_cut_off_mid_way_settles_an_estimate_of_what_was_sent() -> None:
    cut = UpstreamConnectionError("dropped", deployment="a")
    setup = Setup(provider(streams=[[role_chunk(), content("alpha"), content(" beta"), cut]]))
    team = key(max_budget_usd=1.0)
    result = await setup.service.stream(chat(max_tokens=20, stream=True), setup.meter(team))
    with pytest.raises(UpstreamConnectionError):
        async for _ in result.chunks:
            pass
    ledger = await setup.ledger(team)
    assert ledger.reserved_usd == 0.0
    assert ledger.completion_tokens == 3  # "alpha beta": 10 characters ≈ 3 tokens
    assert ledger.spent_usd == pytest.approx(3 * OUT_PER_TOKEN)
    assert ledger.prompt_tokens > 0  # not reported: the count made before sending


async def test_a_stream_closed_unread_releases_its_reservation() -> None:
    setup = Setup(provider())
    team = key(max_budget_usd=1.0)
    result = await setup.service.stream(chat(max_tokens=20, stream=True), setup.meter(team))
    await result.chunks.aclose()  # type: ignore[attr-defined]
    ledger = await setup.ledger(team)
    assert (ledger.reserved_usd, ledger.spent_usd, ledger.completion_tokens) == (0.0, 0.0, 0)


async def test_twenty_concurrent_requests_cannot_overshoot_a_nearly_spent_budget() -> None:
    gate = asyncio.Event()
    answered = provider(outcomes=[completion("x", prompt=1, completion_tokens=10)])
    original = answered.complete

    async def slow_complete(body: Any, model: str) -> Any:
        await gate.wait()
        return await original(body, model)

    answered.complete = slow_complete  # type: ignore[method-assign]
    setup = Setup(answered)
    team = key(max_budget_usd=0.1)
    for _ in range(6):  # 6 × 10 tokens × $0.001 = $0.06 spent
        gate.set()
        await setup.service.complete(chat(max_tokens=10), setup.meter(team))
    gate.clear()
    tasks = [asyncio.ensure_future(setup.service.complete(chat(max_tokens=10), setup.meter(team))) for _ in range(20)]
    await asyncio.sleep(0.05)
    assert (await setup.ledger(team)).reserved_usd == pytest.approx(0.04)  # four in flight hold the rest
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 4
    assert all(isinstance(r, QuotaExceededError) for r in results if isinstance(r, BaseException))
    ledger = await setup.ledger(team)
    assert ledger.spent_usd == pytest.approx(0.1) and ledger.spent_usd <= 0.1 + 1e-9


async def test_usage_reports_the_period_spend_and_limits() -> None:
    setup = Setup(provider(outcomes=[completion("x", prompt=4, completion_tokens=6)]))
    team = client_key("k", ClientKeyConfig(key="k", name="team", models=frozenset({"gpt-4o"}), rpm=5,
                                           max_budget_usd=2.0, budget_period=parse_period("1mo")))  # fmt: skip
    await setup.service.complete(chat(max_tokens=10), setup.governor.meter(team, "gpt-4o"))
    await setup.governor.drain()
    usage = await setup.governor.usage(team)
    assert (usage.name, usage.metered, usage.period) == ("team", True, "1mo")
    assert (usage.period_start, usage.period_end) == (1_748_736_000, 1_751_328_000)  # June 2025, UTC
    assert usage.spend_usd == pytest.approx(0.006) and usage.remaining_usd == pytest.approx(1.994)
    assert (usage.requests, usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1, 4, 6, 10)
    assert usage.budget_usd == 2.0 and usage.reserved_usd == 0.0
    assert (usage.limits.rpm, usage.limits.tpm, usage.limits.models) == (5, None, ["gpt-4o"])
    plain = await setup.governor.usage(client_key("p"))
    assert not plain.metered and plain.spend_usd is None and plain.period == "30d"


async def test_a_request_dearer_than_the_whole_budget_is_refused_up_front() -> None:
    answered = provider()
    setup = Setup(answered)
    team = key(max_budget_usd=2.0)
    with pytest.raises(QuotaExceededError, match=r"may cost up to \$16.384000, more than what is left"):
        await setup.service.complete(chat(), setup.meter(team))  # no max_tokens: gpt-4o's output cap, 16384
    assert answered.calls == []
    assert (await setup.ledger(team)).requests == 0
