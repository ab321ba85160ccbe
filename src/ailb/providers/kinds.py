"""The registry of provider kinds: what AILB knows about each upstream protocol, apart from its adapter.

Code outside ``providers/`` asks a deployment's ``ProviderKind`` (``config.kind.free``,
``config.kind.discovers_models`` …) instead of comparing provider names. A new kind is one record here and one
adapter folder; configuration, pricing, routing and the composition root follow from the record.

This module imports nothing of AILB: configuration reads it before any adapter is loaded, and an adapter's
module is imported only when a deployment of its kind is built (``adapter_class``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProviderEnv:
    """The environment variables that configure a kind's one env-configured deployment (named after the kind).

    The deployment exists when ``api_key`` is set, or for a kind that needs no key, when ``base_url`` is set.
    ``max_tokens`` (optional) sets its ``default_max_tokens``; ``embedding_models`` (optional) its embedding models.
    """

    base_url: str
    models: str
    api_key: str = ""
    max_tokens: str = ""
    embedding_models: str = ""


@dataclass(frozen=True, slots=True)
class ProviderKind:
    name: str  # the ``provider:`` value in the config file
    adapter: str  # "module:Class", imported on first use
    env: ProviderEnv
    default_base_url: str = ""  # "" when every deployment must give its own
    default_priority: int = 0  # failover order when a deployment gives none (lowest first)
    default_models: tuple[str, ...] = ()  # what the env-configured deployment serves without ``*_MODELS``
    default_embedding_models: tuple[str, ...] = ()  # likewise, on /v1/embeddings
    embeddings: bool = False  # has an embeddings endpoint (the adapter's ``create_embeddings``)
    key_required: bool = True
    discovers_models: bool = False  # asks the upstream what it serves when no models are configured
    free: bool = False  # priced 0 unless the deployment gives prices
    implicit_tag: str = ""  # a model written without a tag means this one (``llama3`` is ``llama3:latest``)

    @property
    def configured_by(self) -> str:
        """The env variable whose presence creates this kind's env-configured deployment."""
        return self.env.api_key if self.key_required else self.env.base_url

    def adapter_class(self) -> type:
        module, _, name = self.adapter.partition(":")
        cls: type = getattr(importlib.import_module(module), name)
        return cls


OPENAI = ProviderKind(
    name="openai",
    adapter="ailb.providers.openai.adapter:OpenAIProvider",
    env=ProviderEnv(
        api_key="OPENAI_API_KEY",
        base_url="OPENAI_BASE_URL",
        models="OPENAI_MODELS",
        embedding_models="OPENAI_EMBEDDING_MODELS",
    ),
    default_base_url="https://api.openai.com/v1",
    default_priority=0,
    default_models=("gpt-4o", "gpt-4o-mini", "gpt-4-turbo", "gpt-3.5-turbo"),
    default_embedding_models=("text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"),
    embeddings=True,
)
ANTHROPIC = ProviderKind(
    name="anthropic",
    adapter="ailb.providers.anthropic.adapter:AnthropicProvider",
    env=ProviderEnv(
        api_key="ANTHROPIC_API_KEY",
        base_url="ANTHROPIC_BASE_URL",
        models="ANTHROPIC_MODELS",
        max_tokens="ANTHROPIC_MAX_TOKENS",
    ),
    default_base_url="https://api.anthropic.com",
    default_priority=1,
    default_models=("claude-3-5-sonnet-latest", "claude-3-5-haiku-latest", "claude-3-opus-latest"),
)
OLLAMA = ProviderKind(
    name="ollama",
    adapter="ailb.providers.ollama.adapter:OllamaProvider",
    env=ProviderEnv(base_url="OLLAMA_BASE_URL", models="OLLAMA_MODELS", embedding_models="OLLAMA_EMBEDDING_MODELS"),
    default_priority=2,
    embeddings=True,
    key_required=False,
    discovers_models=True,
    free=True,
    implicit_tag=":latest",
)

_KINDS = {kind.name: kind for kind in (OPENAI, ANTHROPIC, OLLAMA)}
KIND_NAMES = tuple(_KINDS)


def provider_kind(name: str) -> ProviderKind:
    """The kind called ``name``; ``KeyError`` for an unknown one (configuration checks names first)."""
    return _KINDS[name]


def provider_kinds() -> Iterator[ProviderKind]:
    """Every registered kind, in the env-only set-up's failover order."""
    return iter(_KINDS.values())
