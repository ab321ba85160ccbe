"""When to try again: which errors are worth it, how long to wait, and a budget that stops retry storms."""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass

from ailb.errors import UpstreamError, UpstreamStatusError
from ailb.settings import RouterConfig

BUDGET_WINDOW_SECONDS = 10.0


def is_client_error(error: UpstreamError) -> bool:
    """The request itself was refused (400, 404, 413, 422, ...): no other deployment would do better."""
    return isinstance(error, UpstreamStatusError) and not error.retryable and not error.misconfigured


def is_misconfigured(error: UpstreamError) -> bool:
    """An upstream 401/403: the deployment's credentials or permissions are wrong."""
    return isinstance(error, UpstreamStatusError) and error.misconfigured


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3
    backoff_base: float = 0.1
    backoff_cap: float = 5.0

    @classmethod
    def from_config(cls, config: RouterConfig) -> RetryPolicy:
        return cls(config.max_attempts, config.backoff_base, config.backoff_cap)

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff before the ``retry_number``-th retry (1-based) of one deployment."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** max(0, retry_number - 1))
        return rng.uniform(0.0, ceiling)

    def delay_before_same(self, error: UpstreamError | None, retry_number: int, rng: random.Random) -> float:
        """How long to wait before asking the deployment that just failed again; Retry-After wins."""
        if error is not None and error.retry_after is not None:
            return error.retry_after
        return self.backoff(retry_number, rng)


class RetryBudget:
    """Retries may add at most ``ratio`` extra load, plus ``min_per_second`` so quiet gateways can still retry.

    Counted over a sliding window of the last ``BUDGET_WINDOW_SECONDS``: a retry is allowed while
    ``retries < ratio * requests + min_per_second * window``.
    """

    def __init__(self, ratio: float, min_per_second: float, window: float = BUDGET_WINDOW_SECONDS) -> None:
        self.ratio = ratio
        self.min_per_second = min_per_second
        self.window = window
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()

    @classmethod
    def from_config(cls, config: RouterConfig) -> RetryBudget:
        return cls(config.retry_budget_ratio, config.retry_budget_min_per_s)

    def record_request(self, now: float) -> None:
        self._requests.append(now)
        horizon = now - self.window
        while self._requests and self._requests[0] <= horizon:
            self._requests.popleft()

    def try_spend(self, now: float) -> bool:
        """Take one retry from the budget; ``False`` (and nothing taken) when it is exhausted."""
        self._expire(now)
        allowance = math.floor(self.ratio * len(self._requests) + self.min_per_second * self.window + 1e-9)
        if len(self._retries) >= allowance:
            return False
        self._retries.append(now)
        return True

    def snapshot(self, now: float) -> dict[str, float]:
        self._expire(now)
        return {
            "window_seconds": self.window,
            "requests": len(self._requests),
            "retries": len(self._retries),
            "ratio": self.ratio,
            "min_per_second": self.min_per_second,
        }

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        for times in (self._requests, self._retries):
            while times and times[0] <= horizon:
                times.popleft()
