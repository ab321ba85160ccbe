"""What a request costs: configured prices first, then a table of well-known models.

Order of precedence for one (deployment, model):
1. ``input_cost_per_1k`` / ``output_cost_per_1k`` from the deployment's configuration;
2. deployments of a free kind (Ollama: ``ProviderKind.free``) cost nothing;
3. the built-in table below (exact name, else the longest known prefix: ``gpt-4o-2024-08-06`` → ``gpt-4o``);
4. a self-hosted OpenAI-compatible server (loopback, private or single-label host) costs nothing;
5. otherwise the price is unknown (``None``): cost-optimized routing ranks it after every known price.

Prompt tokens read from or written to an upstream's prompt cache have their own rates:
``cache_read_cost_per_1k`` / ``cache_write_cost_per_1k`` from the configuration, else for Claude models 0.1× and
1.25× the input price (Anthropic's list multipliers for reads and 5-minute writes), else the input price.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from ailb.contract import Usage
from ailb.routing.known_models import lookup
from ailb.settings import DeploymentConfig


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per 1,000 tokens; cached prompt tokens at their own rates (``None``: the input price)."""

    input_per_1k: float
    output_per_1k: float
    cache_read_per_1k: float | None = None
    cache_write_per_1k: float | None = None

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        """The cost of a request whose prompt is not known to hit the cache (estimates, reservations)."""
        return (prompt_tokens * self.input_per_1k + completion_tokens * self.output_per_1k) / 1000.0

    def expected_cost(
        self, prompt_tokens: float, completion_tokens: float, read_share: float, write_share: float
    ) -> float:
        """An estimate for a prompt of which the given shares are expected to hit or fill the prompt cache."""
        read, write = prompt_tokens * read_share, prompt_tokens * write_share
        return self.cost_of_parts(max(0.0, prompt_tokens - read - write), read, write, completion_tokens)

    def cost_of(self, usage: Usage | None) -> float:
        """The cost of what an upstream reported, cache reads and writes at their own rates."""
        if usage is None:
            return 0.0
        read, write = usage.cache_read_tokens, usage.cache_write_tokens
        uncached = max(0, usage.prompt_tokens - read - write)
        return self.cost_of_parts(uncached, read, write, usage.completion_tokens)

    def cost_of_parts(self, uncached: float, read: float, write: float, completion: float) -> float:
        read_rate = self.input_per_1k if self.cache_read_per_1k is None else self.cache_read_per_1k
        write_rate = self.input_per_1k if self.cache_write_per_1k is None else self.cache_write_per_1k
        prompt = uncached * self.input_per_1k + read * read_rate + write * write_rate
        return (prompt + completion * self.output_per_1k) / 1000.0


FREE = Price(0.0, 0.0)

# List prices in USD per 1K tokens (input, output).
KNOWN_PRICES: dict[str, Price] = {
    "gpt-5": Price(0.00125, 0.01),
    "gpt-5-mini": Price(0.00025, 0.002),
    "gpt-5-nano": Price(0.00005, 0.0004),
    "gpt-4.1": Price(0.002, 0.008),
    "gpt-4.1-mini": Price(0.0004, 0.0016),
    "gpt-4.1-nano": Price(0.0001, 0.0004),
    "gpt-4o": Price(0.0025, 0.01),
    "gpt-4o-mini": Price(0.00015, 0.0006),
    "gpt-4-turbo": Price(0.01, 0.03),
    "gpt-4": Price(0.03, 0.06),
    "gpt-4-32k": Price(0.06, 0.12),
    "gpt-3.5-turbo": Price(0.0005, 0.0015),
    "o1": Price(0.015, 0.06),
    "o1-mini": Price(0.0011, 0.0044),
    "o3": Price(0.002, 0.008),
    "o3-mini": Price(0.0011, 0.0044),
    "o4-mini": Price(0.0011, 0.0044),
    "claude-opus-4": Price(0.015, 0.075),
    "claude-sonnet-4": Price(0.003, 0.015),
    "claude-haiku-4-5": Price(0.001, 0.005),
    "claude-3-7-sonnet": Price(0.003, 0.015),
    "claude-3-5-sonnet": Price(0.003, 0.015),
    "claude-3-5-haiku": Price(0.0008, 0.004),
    "claude-3-opus": Price(0.015, 0.075),
    "claude-3-sonnet": Price(0.003, 0.015),
    "claude-3-haiku": Price(0.00025, 0.00125),
    # Embedding models: input only.
    "text-embedding-3-small": Price(0.00002, 0.0),
    "text-embedding-3-large": Price(0.00013, 0.0),
    "text-embedding-ada-002": Price(0.0001, 0.0),
}
# Anthropic's prompt cache: reads cost 0.1x the input price, (5-minute) writes 1.25x.
CLAUDE_CACHE_READ_FACTOR = 0.1
CLAUDE_CACHE_WRITE_FACTOR = 1.25


def known_price(model: str) -> Price | None:
    """The table price of ``model`` (exact, else longest prefix ending at a version separator)."""
    return lookup(KNOWN_PRICES, model)


def is_self_hosted(base_url: str) -> bool:
    host = (urlsplit(base_url).hostname or "").lower()
    if not host or host == "localhost" or "." not in host or host.endswith((".local", ".internal", ".localhost")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local


def price_for(config: DeploymentConfig, model: str) -> Price | None:
    base = _base_price(config, model)
    if base is None:
        return None
    read, write = config.cache_read_cost_per_1k, config.cache_write_cost_per_1k
    if _is_claude(model):
        read = base.input_per_1k * CLAUDE_CACHE_READ_FACTOR if read is None else read
        write = base.input_per_1k * CLAUDE_CACHE_WRITE_FACTOR if write is None else write
    return Price(base.input_per_1k, base.output_per_1k, read, write)


def _base_price(config: DeploymentConfig, model: str) -> Price | None:
    table = known_price(model)
    if config.input_cost_per_1k is not None or config.output_cost_per_1k is not None:
        fallback = table or FREE
        return Price(
            config.input_cost_per_1k if config.input_cost_per_1k is not None else fallback.input_per_1k,
            config.output_cost_per_1k if config.output_cost_per_1k is not None else fallback.output_per_1k,
        )
    if config.kind.free:
        return FREE
    if table is not None:
        return table
    return FREE if is_self_hosted(config.base_url) else None


def _is_claude(model: str) -> bool:
    return model.rsplit("/", 1)[-1].lower().startswith("claude")


class PriceBook:
    """Prices resolved once per (deployment, model) and cached: lookups sit on the hot path."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], Price | None] = {}

    def price(self, config: DeploymentConfig, model: str) -> Price | None:
        key = (config.name, model)
        if key not in self._cache:
            self._cache[key] = price_for(config, model)
        return self._cache[key]
