from __future__ import annotations

import pytest

from ailb.routing.weights import TrafficWeights

SERVING = {"a": 1.0, "b": 1.0, "c": 2.0}


def test_no_override_means_full_weight() -> None:
    weights = TrafficWeights()
    assert weights.factor("gpt-4o", "a") == 1.0
    assert weights.in_force("gpt-4o", SERVING) == {"a": 100, "b": 100, "c": 100}


def test_route_override_then_global_then_default() -> None:
    weights = TrafficWeights()
    weights.apply("*", {"a": 10, "b": 20}, SERVING)
    weights.apply("gpt-4o", {"a": 50}, SERVING)
    assert weights.factor("gpt-4o", "a") == 0.5
    assert weights.factor("gpt-4o", "b") == 0.2
    assert weights.factor("gpt-4o", "c") == 1.0
    assert weights.factor("other", "a") == 0.1
    assert weights.snapshot() == {"*": {"a": 10, "b": 20}, "gpt-4o": {"a": 50}}


def test_apply_returns_what_was_applied_and_replaces_the_route() -> None:
    weights = TrafficWeights()
    assert weights.apply("m", {"a": 75, "b": 25}, SERVING) == {"a": 75, "b": 25}
    weights.apply("m", {"c": 0, "a": 100}, SERVING)
    assert weights.snapshot() == {"m": {"c": 0, "a": 100}}
    assert weights.factor("m", "b") == 1.0


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ({}, "no weights"),
        ({"zzz": 10}, "no deployment named 'zzz'"),
        ({"a": -1}, "from 0 to 100"),
        ({"a": 101}, "from 0 to 100"),
        ({"a": 2.5}, "whole number"),
        ({"a": True}, "whole number"),
        ({"a": "10"}, "whole number"),
        ({"a": float("nan")}, "whole number"),
        ({"a": 0, "b": 0}, "above 0"),
    ],
)
def test_bad_weights_are_refused_and_change_nothing(given: dict[str, object], reason: str) -> None:
    weights = TrafficWeights()
    weights.apply("m", {"a": 40}, SERVING)
    with pytest.raises(ValueError, match=reason):
        weights.apply("m", given, SERVING)
    assert weights.snapshot() == {"m": {"a": 40}}


def test_a_change_that_leaves_no_traffic_is_refused() -> None:
    weights = TrafficWeights()
    weights.apply("*", {"a": 100, "b": 0}, {"a": 1.0, "b": 1.0})
    with pytest.raises(ValueError, match="no deployment serving 'm' with traffic"):
        weights.apply("m", {"a": 0, "b": 0, "c": 5}, {"a": 1.0, "b": 1.0, "c": 0.0})
    with pytest.raises(ValueError, match="with traffic"):
        weights.apply(
            "m", {"a": 0, "c": 10}, {"a": 1.0, "b": 1.0, "c": 0.0}
        )  # b is drained by "*", c has config weight 0


def test_draining_one_deployment_is_allowed() -> None:
    weights = TrafficWeights()
    assert weights.apply("m", {"a": 0, "b": 100}, SERVING) == {"a": 0, "b": 100}
    assert weights.factor("m", "a") == 0.0


def test_keep_drops_gone_deployments_and_routes() -> None:
    weights = TrafficWeights()
    weights.apply("*", {"a": 10, "b": 20}, SERVING)
    weights.apply("old-model", {"a": 10}, SERVING)
    weights.keep(["b", "c"], ["gpt-4o"])
    assert weights.snapshot() == {"*": {"b": 20}}
