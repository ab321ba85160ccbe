"""The gateway's own rate limits: one token bucket per route, set at run time over gRPC.

A route is a public model name (or alias), as the client writes it in ``model``, or ``*`` for the whole
gateway. A request passes when both the ``*`` bucket and its model's bucket hold a token; it then takes one
from each. Buckets refill at ``requests_per_second`` up to ``burst_size``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from ailb.errors import RateLimitedError

GLOBAL_ROUTE = "*"


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    requests_per_second: int
    burst_size: int
    enabled: bool = True


class _Bucket:
    __slots__ = ("config", "tokens", "updated")

    def __init__(self, config: RateLimitConfig, now: float) -> None:
        self.config = config
        self.tokens = float(config.burst_size)
        self.updated = now

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.config.burst_size), self.tokens + elapsed * self.config.requests_per_second)
        self.updated = now

    def wait_for_token(self) -> float:
        """Seconds until a token is available (0 when one is)."""
        return max(0.0, (1.0 - self.tokens) / self.config.requests_per_second)


class RateLimiter:
    """Token buckets per route. ``known_routes()`` gives the model names served now (asked only by ``apply``)."""

    def __init__(
        self, known_routes: Callable[[], Collection[str]], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._known_routes = known_routes
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def check(self, model: str) -> None:
        """Take a token for a request to ``model``; raises ``RateLimitedError`` (with ``retry_after``)."""
        if not self._buckets:
            return
        buckets = [b for b in (self._buckets.get(GLOBAL_ROUTE), self._buckets.get(model)) if b is not None]
        if not buckets:
            return
        now = self._clock()
        wait = 0.0
        for bucket in buckets:
            bucket.refill(now)
            wait = max(wait, bucket.wait_for_token())
        if wait > 0:
            raise RateLimitedError(
                f"Rate limit exceeded for `{model}`. Retry after {wait:.2f} seconds.", retry_after=wait
            )
        for bucket in buckets:
            bucket.tokens -= 1.0

    def apply(self, route: str, requests_per_second: int, burst_size: int, enabled: bool) -> None:
        """Set (or with ``enabled=False`` remove) the limit of ``route``; raises ``ValueError`` and changes
        nothing when a value is invalid or the route is unknown."""
        if requests_per_second < 0 or burst_size < 0:
            raise ValueError("requests_per_second and burst_size must not be negative")
        if route != GLOBAL_ROUTE and route not in self._known_routes():
            raise ValueError(f"unknown route {route!r}: use a served model name or '*'")
        if not enabled:
            self._buckets.pop(route, None)
            return
        if requests_per_second < 1:
            raise ValueError("requests_per_second must be at least 1 while the limit is enabled")
        if burst_size < 1:
            raise ValueError("burst_size must be at least 1 while the limit is enabled")
        config = RateLimitConfig(requests_per_second, burst_size)
        now = self._clock()
        bucket = self._buckets.get(route)
        if bucket is None:
            self._buckets[route] = _Bucket(config, now)
            return
        # Re-applying a limit must not hand out a fresh burst: keep the tokens already spent.
        bucket.refill(now)
        bucket.config = config
        bucket.tokens = min(bucket.tokens, float(burst_size))

    def config(self, route: str) -> RateLimitConfig | None:
        bucket = self._buckets.get(route)
        return bucket.config if bucket is not None else None

    def configs(self) -> dict[str, RateLimitConfig]:
        return {route: bucket.config for route, bucket in self._buckets.items()}

    def clear(self) -> None:
        """Remove every limit (a forced reload)."""
        self._buckets.clear()
