"""The most output tokens a request may ask of a deployment: ``max_output_tokens`` from its configuration,
else the figure the model's maker publishes (table below, matched like prices), else a generic default.

A request whose ``max_tokens``/``max_completion_tokens`` exceeds what every deployment of its model allows is
refused with a 400 before anything is sent; deployments that allow less than asked are left out of its routing.
"""

from __future__ import annotations

from ailb.routing.known_models import lookup
from ailb.settings import DeploymentConfig

DEFAULT_OUTPUT_CAP = 32_768
KNOWN_OUTPUT_CAPS: dict[str, int] = {
    "gpt-5": 128_000,
    "gpt-4.1": 32_768,
    "gpt-4o": 16_384,
    "gpt-4o-mini": 16_384,
    "gpt-4-turbo": 4_096,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 4_096,
    "o1": 100_000,
    "o1-mini": 65_536,
    "o1-preview": 32_768,
    "o3": 100_000,
    "o3-mini": 100_000,
    "o4-mini": 100_000,
    "claude-opus-4": 32_000,
    "claude-opus-4-5": 64_000,
    "claude-sonnet-4": 64_000,
    "claude-haiku-4-5": 64_000,
    "claude-3-7-sonnet": 64_000,
    "claude-3-5-sonnet": 8_192,
    "claude-3-5-haiku": 8_192,
    "claude-3-opus": 4_096,
    "claude-3-sonnet": 4_096,
    "claude-3-haiku": 4_096,
}


def output_cap(config: DeploymentConfig, model: str) -> int:
    """The largest ``max_tokens`` deployment ``config`` accepts for upstream model ``model``."""
    if config.max_output_tokens is not None:
        return config.max_output_tokens
    known = lookup(KNOWN_OUTPUT_CAPS, model)
    return DEFAULT_OUTPUT_CAP if known is None else known
