"""How many output tokens a deployment allows, and routing around those that allow too few."""

from __future__ import annotations

import pytest

from ailb.contract import ChatCall
from ailb.errors import InvalidRequestError
from ailb.routing.catalog import Catalog
from ailb.routing.output_caps import DEFAULT_OUTPUT_CAP, output_cap
from ailb.routing.router import within_output_caps

from .support import Clock, config, deployment


@pytest.mark.parametrize(
    ("model", "cap"),
    [
        ("gpt-4o", 16384),
        ("gpt-4o-2024-08-06", 16384),
        ("gpt-4o-mini", 16384),
        ("gpt-4-turbo", 4096),
        ("gpt-3.5-turbo-0125", 4096),
        ("claude-3-5-sonnet-latest", 8192),
        ("claude-3-5-haiku-20241022", 8192),
        ("claude-3-opus-latest", 4096),
        ("o1", 100000),
        ("o3-mini", 100000),
        ("openai/gpt-4o", 16384),
        ("llama3.2:latest", DEFAULT_OUTPUT_CAP),
    ],
)
def test_well_known_models_have_their_published_cap(model: str, cap: int) -> None:
    assert output_cap(config("a"), model) == cap


def test_a_configured_cap_wins() -> None:
    assert output_cap(config("a", max_output_tokens=1000), "gpt-4o") == 1000


def _call(**body: int) -> ChatCall:
    return ChatCall(body={"model": "fast", "messages": [], **body}, model="fast", stream=False, include_usage=False,
                    tenant="t")  # fmt: skip


def test_deployments_allowing_too_few_are_left_out_and_none_is_a_400() -> None:
    clock = Clock()
    small = deployment(config("small", models=("gpt-4o",), max_output_tokens=1000), clock)
    large = deployment(config("large", models=("gpt-4o",)), clock)
    targets = Catalog([small, large], {}).targets("gpt-4o")
    assert within_output_caps(targets, _call()) == targets
    assert within_output_caps(targets, _call(max_tokens=1000)) == targets
    assert [t.deployment.name for t in within_output_caps(targets, _call(max_tokens=1001))] == ["large"]
    for param in ("max_tokens", "max_completion_tokens"):
        with pytest.raises(InvalidRequestError) as refused:
            within_output_caps(targets, _call(**{param: 16385}))
        assert refused.value.status == 400 and refused.value.param == param and "16384" in refused.value.message
