from __future__ import annotations

import pytest

from ailb.errors import RateLimitedError
from ailb.routing.ratelimit import RateLimitConfig, RateLimiter
from ailb.state import InProcessLimitStore


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock | None = None) -> RateLimiter:
    store = InProcessLimitStore(clock=clock or Clock())
    return RateLimiter(lambda: {"gpt-4o": ["a"], "fast": ["a", "b"]}, store)


async def passes(rl: RateLimiter, model: str) -> bool:
    try:
        await rl.check(model)
    except RateLimitedError:
        return False
    return True


async def test_no_limits_means_everything_passes() -> None:
    rl = limiter()
    assert not rl.active
    assert all([await passes(rl, "gpt-4o") for _ in range(1000)])


async def test_burst_then_refill_at_the_configured_rate() -> None:
    clock = Clock()
    rl = limiter(clock)
    rl.apply("gpt-4o", requests_per_second=2, burst_size=3, enabled=True)
    assert rl.active
    assert [await passes(rl, "gpt-4o") for _ in range(4)] == [True, True, True, False]
    assert await passes(rl, "fast")  # other routes are not limited
    clock.now += 0.5  # one token back
    assert await passes(rl, "gpt-4o")
    assert not await passes(rl, "gpt-4o")
    clock.now += 10  # never more than the burst
    assert sum([await passes(rl, "gpt-4o") for _ in range(10)]) == 3


async def test_refusal_carries_retry_after() -> None:
    clock = Clock()
    rl = limiter(clock)
    rl.apply("gpt-4o", 1, 1, True)
    await rl.check("gpt-4o")
    clock.now += 0.25
    with pytest.raises(RateLimitedError) as refused:
        await rl.check("gpt-4o")
    assert refused.value.retry_after == pytest.approx(0.75)
    assert refused.value.status == 429
    assert refused.value.code == "rate_limit_exceeded"
    assert refused.value.headers["Retry-After"] == "1"


async def test_global_limit_covers_every_model_and_a_refusal_takes_no_token() -> None:
    clock = Clock()
    rl = limiter(clock)
    rl.apply("*", 1, 2, True)
    rl.apply("fast", 1, 5, True)
    assert await passes(rl, "gpt-4o")
    assert await passes(rl, "fast")
    assert not await passes(rl, "fast")
    assert not await passes(rl, "unknown-model")
    # the refused requests did not spend the "fast" bucket: it still has 4 of 5 after one more second
    clock.now += 1
    assert await passes(rl, "fast")
    assert rl.config("fast") == RateLimitConfig(1, 5, True)


async def test_disable_removes_the_limit() -> None:
    rl = limiter()
    rl.apply("gpt-4o", 1, 1, True)
    await rl.check("gpt-4o")
    rl.apply("gpt-4o", 0, 0, False)
    assert rl.config("gpt-4o") is None
    assert all([await passes(rl, "gpt-4o") for _ in range(10)])


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


async def test_reapplying_a_limit_does_not_refill_the_bucket() -> None:
    clock = Clock()
    rl = limiter(clock)
    rl.apply("gpt-4o", 1, 2, True)
    await rl.check("gpt-4o")
    await rl.check("gpt-4o")
    rl.apply("gpt-4o", 1, 2, True)
    assert not await passes(rl, "gpt-4o")


async def test_lowering_the_burst_caps_the_tokens_left() -> None:
    clock = Clock()
    rl = limiter(clock)
    rl.apply("gpt-4o", 1, 10, True)
    await rl.check("gpt-4o")
    rl.apply("gpt-4o", 1, 2, True)
    assert [await passes(rl, "gpt-4o") for _ in range(3)] == [True, True, False]


def test_known_routes_are_read_when_applying() -> None:
    served: dict[str, list[str]] = {}
    rl = RateLimiter(lambda: served, InProcessLimitStore(clock=Clock()))
    with pytest.raises(ValueError):
        rl.apply("new-model", 1, 1, True)
    served["new-model"] = ["d"]
    rl.apply("new-model", 1, 1, True)
    rl.clear()
    assert rl.configs() == {}
