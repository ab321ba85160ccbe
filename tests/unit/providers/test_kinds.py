"""The provider-kind registry: each kind's record drives configuration, pricing and routing, and nothing
outside ``providers/`` compares provider names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ailb.providers.kinds import KIND_NAMES, OLLAMA, OPENAI, ProviderKind, provider_kind, provider_kinds
from ailb.routing.circuit import CircuitPolicy
from ailb.routing.deployment import Deployment
from ailb.routing.pricing import price_for
from ailb.runtime import build_provider
from ailb.settings import DeploymentConfig

SOURCE = Path(__file__).parents[3] / "src" / "ailb"


@pytest.mark.parametrize("kind", list(provider_kinds()), ids=lambda k: k.name)
async def test_each_kind_builds_its_adapter(kind: ProviderKind) -> None:
    assert kind is provider_kind(kind.name)
    config = DeploymentConfig(name="d", provider=kind.name, base_url="http://127.0.0.1:9", api_key="k")
    provider = build_provider(config)
    assert type(provider) is kind.adapter_class()
    assert type(provider).__module__ == f"ailb.providers.{kind.name}.adapter"
    await provider.aclose()


def test_no_module_outside_providers_names_a_provider_kind() -> None:
    literal = re.compile("|".join(rf"[\"']{name}[\"']" for name in KIND_NAMES))
    found = [
        f"{path.relative_to(SOURCE)}:{number}"
        for path in SOURCE.rglob("*.py")
        if "providers" not in path.relative_to(SOURCE).parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert found == []


def test_a_free_kind_costs_nothing_and_others_use_the_price_table() -> None:
    ollama = DeploymentConfig(name="o", provider=OLLAMA.name, base_url="https://ollama.example.com")
    openai = DeploymentConfig(name="p", provider=OPENAI.name, base_url="https://api.openai.com/v1", api_key="k")
    assert OLLAMA.free and not OPENAI.free
    price = price_for(ollama, "gpt-4o")
    assert price is not None and (price.input_per_1k, price.output_per_1k) == (0.0, 0.0)
    paid = price_for(openai, "gpt-4o")
    assert paid is not None and paid.input_per_1k > 0


def test_the_implicit_tag_and_model_discovery_come_from_the_kind() -> None:
    def deployment(kind: str, models: tuple[str, ...]) -> Deployment:
        config = DeploymentConfig(name="d", provider=kind, base_url="http://127.0.0.1:9", models=models)
        return Deployment(config, provider=None, policy=CircuitPolicy(), clock=lambda: 0.0)  # type: ignore[arg-type]

    ollama = deployment(OLLAMA.name, ())
    assert ollama.discovers_models
    ollama.set_models(["llama3:latest"])
    assert ollama.upstream_model("llama3") == "llama3:latest" and list(ollama.short_names()) == ["llama3"]
    openai = deployment(OPENAI.name, ("llama3:latest",))
    assert not openai.discovers_models
    assert openai.upstream_model("llama3") is None and list(openai.short_names()) == []
