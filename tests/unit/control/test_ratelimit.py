from __future__ import annotations

import pytest

from ailb.errors import RateLimitedError
from ailb.routing.ratelimit import RateLimitConfig, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock | None = None) -> RateLimiter:
    return RateLimiter(lambda: {"gpt-4o": ["a"], "fast": ["a", "b"]}, clock=clock or Clock())


def passes(rl: RateLimiter, model: str) -> bool:
    try:
        rl.check(model)
    except RateLimitedError:
        return False
    return True


def test_no_limits_means_everything_passes() -> None:
    rl = limiter()
    assert all(passes(rl, "gpt-4o") for _ in range(1000))


def test_burst_then_refill_at_the_configured_rate() -> None:
    clock = Clock()
    rl = limiter(clock)
    rl.apply("gpt-4o", requests_per_second=2, burst_size=3, enabled=True)
    assert [passes(rl, "gpt-4o") for _ in range(4)] == [True, True, True, False]
    assert passes(rl, "fast")  # other routes are not limited
    clock.now += 0.5  # one token back
    assert passes(rl, "gpt-4o")
    assert not passes(rl, "gpt-4o")
    clock.now += 10  # never more than the burst
    assert sum(passes(rl, "gpt-4o") for _ in range(10)) == 3


def test_refusal_carries_retry_after() -> None:
    clock = Clock()
    rl = limiter(clock)
    rl.apply("gpt-4o", 1, 1, True)
    rl.check("gpt-4o")
    clock.now += 0.25
    with pytest.raises(RateLimitedError) as refused:
        rl.check("gpt-4o")
    assert refused.value.retry_after == pytest.approx(0.75)
    assert refused.value.status == 429
    assert refused.value.code == "rate_limit_exceeded"
    assert refused.value.headers["Retry-After"] == "1"


def test_global_limit_covers_every_model_and_a_refusal_takes_no_token() -> None:
    clock = Clock()
    rl = limiter(clock)
    rl.apply("*", 1, 2, True)
    rl.apply("fast", 1, 5, True)
    assert passes(rl, "gpt-4o")
    assert passes(rl, "fast")
    assert not passes(rl, "fast")
    assert not passes(rl, "unknown-model")
    # the refused requests did not spend the "fast" bucket: it still has 4 of 5 after one more second
    clock.now += 1
    assert passes(rl, "fast")
    assert rl.config("fast") == RateLimitConfig(1, 5, True)


def test_disable_removes_the_limit() -> None:
    rl = limiter()
    rl.apply("gpt-4o", 1, 1, True)
    rl.check("gpt-4o")
    rl.apply("gpt-4o", 0, 0, False)
    assert rl.config("gpt-4o") is None
    assert all(passes(rl, "gpt-4o") for _ in range(10))


@pytest.mark.parametrize(
    ("route", "rps", "burst", "enabled", "reason"),
    [
        ("gpt-4o", -1, 5, True, "negative"),
        ("gpt-4o", 5, -1, False, "negative"),
        ("gpt-4o", 5, 0, True, "burst_size"),
        ("gpt-4o", 0, 5, True, "requests_per_second"),
        ("no-such-model", 5, 5, True, "unknown route"),
        ("no-such-model", 0, 0, False, "unknown route"),
    ],
)
def test_invalid_values_change_nothing(route: str, rps: int, burst: int, enabled: bool, reason: str) -> None:
    rl = limiter()
    rl.apply("gpt-4o", 7, 9, True)
    with pytest.raises(ValueError, match=reason):
        rl.apply(route, rps, burst, enabled)
    assert rl.configs() == {"gpt-4o": RateLimitConfig(7, 9, True)}


def test_reapplying_a_limit_does_not_refill_the_bucket() -> None:
    clock = Clock()
    rl = limiter(clock)
    rl.apply("gpt-4o", 1, 2, True)
    rl.check("gpt-4o")
    rl.check("gpt-4o")
    rl.apply("gpt-4o", 1, 2, True)
    assert not passes(rl, "gpt-4o")


def test_known_routes_are_read_when_applying() -> None:
    served: dict[str, list[str]] = {}
    rl = RateLimiter(lambda: served, clock=Clock())
    with pytest.raises(ValueError):
        rl.apply("new-model", 1, 1, True)
    served["new-model"] = ["d"]
    rl.apply("new-model", 1, 1, True)
    rl.clear()
    assert rl.configs() == {}
