from __future__ import annotations

import pytest

from ailb.control.weights import deployment_weights
from ailb.settings import DeploymentConfig


def deployment(name: str, version: str = "") -> DeploymentConfig:
    return DeploymentConfig(name=name, provider="openai", base_url="http://127.0.0.1:9", api_key="k", version=version)


CANDIDATES = [deployment("east-blue", "blue"), deployment("west-blue", "blue"), deployment("east-green", "green")]


def test_version_labels_stand_for_every_deployment_carrying_them() -> None:
    weights = deployment_weights("gpt-4o", [("blue", 30), ("green", 70)], CANDIDATES)
    assert weights == {"east-blue": 30, "west-blue": 30, "east-green": 70}


def test_deployment_names_and_a_zero_weight_drain() -> None:
    weights = deployment_weights("gpt-4o", [("east-blue", 0), ("east-green", 100)], CANDIDATES)
    assert weights == {"east-blue": 0, "east-green": 100}


def test_a_deployment_name_wins_over_a_label_of_the_same_spelling() -> None:
    candidates = [deployment("blue", "green"), deployment("other", "blue")]
    assert deployment_weights("m", [("blue", 5)], candidates) == {"blue": 5}


@pytest.mark.parametrize(
    ("requested", "reason"),
    [
        ([], "no weights"),
        ([("purple", 10)], "unknown backend 'purple'"),
        ([("blue", -1)], "between 0 and 100"),
        ([("blue", 101)], "between 0 and 100"),
        ([("blue", 0), ("green", 0)], "above 0"),
        ([("blue", 10), ("blue", 20)], "listed twice"),
        ([("blue", 10), ("east-blue", 20)], "named twice"),
    ],
)
def test_invalid_requests_are_refused_with_a_reason(requested: list[tuple[str, int]], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        deployment_weights("gpt-4o", requested, CANDIDATES)


def test_a_label_no_candidate_carries_is_unknown() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        deployment_weights("m", [("green", 50)], [deployment("a", "blue")])
