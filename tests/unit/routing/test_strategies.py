from __future__ import annotations

import random
from collections import Counter

import pytest

from ailb.contract import Usage
from ailb.routing.strategies import STRATEGIES, build_strategies, validate_strategy
from ailb.routing.strategies.base import lowest
from ailb.routing.strategies.cost import DEFAULT_COMPLETION_TOKENS, CostOptimized
from ailb.routing.strategies.failover import Failover
from ailb.routing.strategies.latency import LatencyOptimized
from ailb.routing.strategies.load import LoadBalanced
from ailb.routing.strategies.weighted import RoundRobin, WeightedRandom
from ailb.routing.tokens import TokenCounter

from .support import Clock, candidate, config, context, deployment, request


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_registry_names_every_strategy_of_the_issue() -> None:
    assert set(STRATEGIES) == {
        "round_robin",
        "random",
        "latency_optimized",
        "cost_optimized",
        "load_balanced",
        "failover",
    }
    assert set(build_strategies(context())) == set(STRATEGIES)


def test_validate_strategy_normalises_and_rejects() -> None:
    assert validate_strategy(" Latency-Optimized ") == "latency_optimized"
    with pytest.raises(ValueError, match=r"unknown routing strategy 'fastest'.*round_robin"):
        validate_strategy("fastest")


# --- round robin -----------------------------------------------------------------------------------------
def test_round_robin_is_smooth_and_honours_weight(clock: Clock) -> None:
    a, b = deployment(config("a", weight=3), clock), deployment(config("b", weight=1), clock)
    strategy = RoundRobin(context())
    picks = [strategy.choose([candidate(a), candidate(b)], request(clock)).name for _ in range(8)]
    assert picks == ["a", "a", "b", "a", "a", "a", "b", "a"]


def test_round_robin_keeps_separate_rotation_per_model(clock: Clock) -> None:
    a, b = deployment(config("a"), clock), deployment(config("b"), clock)
    strategy = RoundRobin(context())
    cands = [candidate(a), candidate(b)]
    first = strategy.choose(cands, request(clock, route="m1")).name
    other_route = strategy.choose(cands, request(clock, route="m2")).name
    second = strategy.choose(cands, request(clock, route="m1")).name
    assert first == other_route == "a"
    assert second == "b"


@pytest.mark.parametrize("factory", [RoundRobin, WeightedRandom])
def test_three_to_one_weights_give_three_quarters_of_picks(factory: type, clock: Clock) -> None:
    a, b = deployment(config("a", weight=3), clock), deployment(config("b", weight=1), clock)
    strategy = factory(context(seed=2024))
    counts = Counter(strategy.choose([candidate(a), candidate(b)], request(clock)).name for _ in range(2000))
    assert 0.70 <= counts["a"] / 2000 <= 0.80


def test_random_is_reproducible_with_a_seed(clock: Clock) -> None:
    a, b = deployment(config("a"), clock), deployment(config("b"), clock)

    def picks(seed: int) -> list[str]:
        strategy = WeightedRandom(context(seed=seed))
        return [strategy.choose([candidate(a), candidate(b)], request(clock)).name for _ in range(40)]

    assert picks(5) == picks(5)
    assert set(picks(5)) == {"a", "b"}


# --- latency ----------------------------------------------------------------------------------------------
def test_latency_prefers_lowest_measured_latency(clock: Clock) -> None:
    fast, slow = deployment(config("fast"), clock), deployment(config("slow"), clock)
    fast.stats.record_latency(0.2, clock())
    slow.stats.record_latency(1.0, clock())
    assert LatencyOptimized(context()).choose([candidate(slow), candidate(fast)], request(clock)).name == "fast"


def test_latency_uses_ttft_for_streams_and_latency_for_plain_requests(clock: Clock) -> None:
    a, b = deployment(config("a"), clock), deployment(config("b"), clock)
    a.stats.record_latency(0.5, clock())
    a.stats.record_ttft(0.4, clock())
    b.stats.record_latency(2.0, clock())  # long answers, but quick to start
    b.stats.record_ttft(0.1, clock())
    strategy = LatencyOptimized(context())
    assert strategy.choose([candidate(a), candidate(b)], request(clock)).name == "a"
    assert strategy.choose([candidate(a), candidate(b)], request(clock, stream=True)).name == "b"


def test_latency_penalises_requests_in_flight(clock: Clock) -> None:
    fast, slow = deployment(config("fast"), clock), deployment(config("slow"), clock)
    fast.stats.record_latency(0.3, clock())
    slow.stats.record_latency(0.5, clock())
    fast.in_flight = 1  # 0.3 * 2 = 0.6 > 0.5
    assert LatencyOptimized(context()).choose([candidate(fast), candidate(slow)], request(clock)).name == "slow"


def test_latency_explores_unmeasured_deployments_first_one_at_a_time(clock: Clock) -> None:
    known, new = deployment(config("known"), clock), deployment(config("new"), clock)
    known.stats.record_latency(0.01, clock())
    strategy = LatencyOptimized(context())
    assert strategy.choose([candidate(known), candidate(new)], request(clock)).name == "new"
    new.in_flight = 1
    assert strategy.choose([candidate(known), candidate(new)], request(clock)).name == "known"


def test_latency_measurements_decay_with_time(clock: Clock) -> None:
    a = deployment(config("a"), clock)
    a.stats.record_latency(1.0, clock())
    a.stats.record_latency(0.0, clock())  # same instant: the new sample still weighs in
    first = a.stats.expected_latency(False, clock())
    assert first is not None and 0.0 < first < 1.0
    clock.advance(300.0)  # one stale half-life later the estimate has faded to half
    later = a.stats.expected_latency(False, clock())
    assert later == pytest.approx(first / 2)


# --- cost -------------------------------------------------------------------------------------------------
def test_cost_picks_the_cheapest_for_this_request(clock: Clock) -> None:
    big = deployment(config("big", models=("gpt-4o",)), clock)
    small = deployment(config("small", models=("gpt-4o-mini",)), clock)
    strategy = CostOptimized(context())
    cands = [candidate(big, model="gpt-4o"), candidate(small, model="gpt-4o-mini")]
    assert strategy.choose(cands, request(clock, prompt_tokens=1000, max_tokens=100)).name == "small"
    assert strategy.expected_cost(cands[0], request(clock, prompt_tokens=1000, max_tokens=100)) == pytest.approx(
        1000 / 1000 * 0.0025 + 100 / 1000 * 0.01
    )


def test_cost_weighs_completion_tokens_by_output_price(clock: Clock) -> None:
    # cheap input, dear output versus the opposite: the answer length decides.
    cheap_in = deployment(config("cheap-in", input_cost_per_1k=0.001, output_cost_per_1k=0.1), clock)
    cheap_out = deployment(config("cheap-out", input_cost_per_1k=0.01, output_cost_per_1k=0.01), clock)
    strategy = CostOptimized(context())
    cands = [candidate(cheap_in), candidate(cheap_out)]
    assert strategy.choose(cands, request(clock, prompt_tokens=10_000, max_tokens=10)).name == "cheap-in"
    assert strategy.choose(cands, request(clock, prompt_tokens=10, max_tokens=10_000)).name == "cheap-out"


def test_cost_uses_observed_completion_length_without_max_tokens(clock: Clock) -> None:
    a = deployment(config("a", input_cost_per_1k=0.0, output_cost_per_1k=1.0), clock)
    strategy = CostOptimized(context())
    req = request(clock, prompt_tokens=0)
    assert strategy.expected_cost(candidate(a), req) == pytest.approx(DEFAULT_COMPLETION_TOKENS / 1000)
    a.stats.record_success(Usage(1, 40), 0.0, clock())
    assert strategy.expected_cost(candidate(a), req) == pytest.approx(40 / 1000)


def test_cost_ties_go_to_lower_latency_and_free_beats_paid(clock: Clock) -> None:
    local1 = deployment(config("local1", provider="ollama", models=("llama3",)), clock)
    local2 = deployment(config("local2", provider="ollama", models=("llama3",)), clock)
    paid = deployment(config("paid", models=("gpt-4o",)), clock)
    local1.stats.record_latency(0.9, clock())
    local2.stats.record_latency(0.4, clock())
    paid.stats.record_latency(0.01, clock())
    cands = [candidate(paid), candidate(local1, model="llama3"), candidate(local2, model="llama3")]
    assert CostOptimized(context()).choose(cands, request(clock, prompt_tokens=50)).name == "local2"


def test_cost_ranks_unknown_prices_last(clock: Clock) -> None:
    unknown = deployment(config("unknown", models=("mystery",)), clock)
    known = deployment(config("known", models=("gpt-4",)), clock)
    cands = [candidate(unknown, model="mystery"), candidate(known, model="gpt-4")]
    assert CostOptimized(context()).choose(cands, request(clock, prompt_tokens=10)).name == "known"


def test_cost_applies_the_learned_token_calibration(clock: Clock) -> None:
    tokens = TokenCounter(lambda: None)
    tokens.observe("gpt-4o", counted=100, reported=200)
    a = deployment(config("a", input_cost_per_1k=1.0, output_cost_per_1k=0.0), clock)
    cost = CostOptimized(context(tokens=tokens)).expected_cost(candidate(a), request(clock, prompt_tokens=100))
    assert cost == pytest.approx(200 / 1000)


def test_cost_prices_the_prompt_cache_a_deployment_is_seen_to_hit(clock: Clock) -> None:
    # Same list prices; the deployment whose prompts mostly come from the cache is the cheaper one.
    plain = deployment(config("plain", input_cost_per_1k=1.0, output_cost_per_1k=0.0), clock)
    cached = deployment(
        config("cached", input_cost_per_1k=1.0, output_cost_per_1k=0.0, cache_read_cost_per_1k=0.1), clock
    )
    cached.stats.record_success(Usage(1000, 10, cache_read_tokens=900), 0.0, clock())
    strategy = CostOptimized(context())
    req = request(clock, prompt_tokens=1000, max_tokens=10)
    assert strategy.expected_cost(candidate(cached), req) == pytest.approx((100 * 1.0 + 900 * 0.1) / 1000)
    assert strategy.choose([candidate(plain), candidate(cached)], req).name == "cached"
    writes = deployment(
        config("writes", input_cost_per_1k=1.0, output_cost_per_1k=0.0, cache_write_cost_per_1k=2.0), clock
    )
    writes.stats.record_success(Usage(1000, 10, cache_write_tokens=1000), 0.0, clock())
    assert strategy.choose([candidate(plain), candidate(writes)], req).name == "plain"


# --- load balanced ------------------------------------------------------------------------------------------
def test_load_balanced_takes_fewest_in_flight_relative_to_weight(clock: Clock) -> None:
    a, b = deployment(config("a", weight=2), clock), deployment(config("b", weight=1), clock)
    a.in_flight, b.in_flight = 3, 1  # 1.5 versus 1.0
    assert LoadBalanced(context()).choose([candidate(a), candidate(b)], request(clock)).name == "b"
    a.in_flight = 1  # 0.5 versus 1.0
    assert LoadBalanced(context()).choose([candidate(a), candidate(b)], request(clock)).name == "a"


def test_load_balanced_breaks_ties_by_latency_then_at_random(clock: Clock) -> None:
    a, b = deployment(config("a"), clock), deployment(config("b"), clock)
    a.stats.record_latency(0.5, clock())
    b.stats.record_latency(0.2, clock())
    assert LoadBalanced(context()).choose([candidate(a), candidate(b)], request(clock)).name == "b"
    c, d = deployment(config("c"), clock), deployment(config("d"), clock)
    strategy = LoadBalanced(context(seed=1))
    picks = {strategy.choose([candidate(c), candidate(d)], request(clock)).name for _ in range(30)}
    assert picks == {"c", "d"}


# --- failover ---------------------------------------------------------------------------------------------
def test_failover_takes_lowest_priority_value_then_config_order(clock: Clock) -> None:
    openai = deployment(config("openai", priority=0), clock)
    anthropic = deployment(config("anthropic", priority=1), clock)
    ollama = deployment(config("ollama", priority=2), clock)
    backup = deployment(config("backup", priority=1), clock)
    strategy = Failover(context())
    assert (
        strategy.choose([candidate(ollama), candidate(anthropic), candidate(openai)], request(clock)).name == "openai"
    )
    assert (
        strategy.choose([candidate(ollama), candidate(anthropic), candidate(backup)], request(clock)).name
        == "anthropic"
    )


def test_lowest_takes_the_lowest_key_and_breaks_exact_ties_at_random_among_them(clock: Clock) -> None:
    a, b, c, d = (candidate(deployment(config(name), clock)) for name in "abcd")
    keys = {"a": 3.0, "b": 1.0, "c": 2.0, "d": 1.0}
    rng = random.Random(3)
    picks = Counter(lowest([a, b, c, d], lambda x: keys[x.name], rng).name for _ in range(200))
    assert set(picks) == {"b", "d"} and min(picks.values()) > 60
    assert lowest([a, c], lambda x: keys[x.name], rng) is c  # no tie: no chance
    assert lowest([d], lambda x: keys[x.name], rng) is d
    # An earlier tie no longer counts once a lower key comes.
    keys = {"a": 2.0, "b": 2.0, "c": 1.0, "d": 5.0}
    assert {lowest([a, b, c, d], lambda x: keys[x.name], rng).name for _ in range(50)} == {"c"}
