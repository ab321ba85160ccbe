from __future__ import annotations

import random

import pytest

from ailb.errors import UpstreamConnectionError, UpstreamTimeoutError
from ailb.routing.retry import RetryBudget, RetryPolicy, is_client_error, is_misconfigured

from .support import status_error


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_retryable_statuses(status: int) -> None:
    error = status_error("a", status)
    assert error.retryable and not is_client_error(error) and not is_misconfigured(error)


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_client_errors_are_not_retried(status: int) -> None:
    assert is_client_error(status_error("a", status))


@pytest.mark.parametrize("status", [401, 403])
def test_credentials_errors_mean_misconfigured(status: int) -> None:
    error = status_error("a", status)
    assert is_misconfigured(error) and not is_client_error(error)


def test_connection_and_timeout_errors_are_retryable() -> None:
    for error in (UpstreamConnectionError("x"), UpstreamTimeoutError("y")):
        assert error.retryable and not is_client_error(error)


def test_backoff_is_jittered_exponential_and_capped() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_base=0.1, backoff_cap=1.0)
    rng = random.Random(3)
    for number, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        samples = [policy.backoff(number, rng) for _ in range(200)]
        assert all(0.0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # full jitter spreads over the whole range
    assert RetryPolicy(3, 0.1, 1.0).backoff(2, random.Random(1)) == RetryPolicy(3, 0.1, 1.0).backoff(
        2, random.Random(1)
    )


def test_retry_after_wins_over_backoff() -> None:
    policy = RetryPolicy(backoff_base=0.1, backoff_cap=1.0)
    assert policy.delay_before_same(status_error("a", 429, retry_after=2.5), 1, random.Random(0)) == 2.5
    assert policy.delay_before_same(status_error("a", 500), 1, random.Random(0)) <= 0.1


def test_budget_allows_the_ratio_of_requests() -> None:
    budget = RetryBudget(ratio=0.2, min_per_second=0.0, window=10.0)
    for _ in range(10):
        budget.record_request(100.0)
    assert budget.try_spend(100.0)
    assert budget.try_spend(100.0)
    assert not budget.try_spend(100.0)  # 2 retries for 10 requests is 20% extra load
    assert budget.snapshot(100.0)["retries"] == 2


def test_budget_window_slides() -> None:
    budget = RetryBudget(ratio=0.5, min_per_second=0.0, window=10.0)
    budget.record_request(0.0)
    budget.record_request(0.0)
    assert budget.try_spend(1.0)
    assert not budget.try_spend(1.0)
    budget.record_request(10.5)
    budget.record_request(10.5)
    assert budget.try_spend(11.0)  # the old requests and retry have expired
    assert budget.snapshot(11.0) == {
        "window_seconds": 10.0,
        "requests": 2,
        "retries": 1,
        "ratio": 0.5,
        "min_per_second": 0.0,
    }


def test_budget_minimum_lets_a_quiet_gateway_retry() -> None:
    budget = RetryBudget(ratio=0.0, min_per_second=0.3, window=10.0)
    assert [budget.try_spend(5.0) for _ in range(4)] == [True, True, True, False]
