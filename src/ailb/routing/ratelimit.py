"""The gateway's own rate limits: one token bucket per route, set at run time over gRPC.

A route is a public model name (or alias), as the client writes it in ``model``, or ``*`` for the whole
gateway. A request passes when both the ``*`` bucket and its model's bucket hold a token; it then takes one
from each (one atomic ``LimitStore.acquire``). Buckets refill at ``requests_per_second`` up to ``burst_size``.
The limits themselves live here; the buckets' levels live in the ``LimitStore``, so re-applying a limit keeps
the tokens already spent, and a store shared by a fleet makes the limit hold for the fleet.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from ailb.errors import RateLimitedError
from ailb.routing.routes import GLOBAL_ROUTE
from ailb.state import Draw, LimitStore


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    requests_per_second: int
    burst_size: int
    enabled: bool = True

    def draw(self, route: str) -> Draw:
        return Draw(route_bucket(route), self.burst_size, self.requests_per_second, 1)


def route_bucket(route: str) -> str:
    return f"route:{route}"


class RateLimiter:
    """Limits per route. ``known_routes()`` gives the model names served now (asked only by ``apply``)."""

    def __init__(self, known_routes: Callable[[], Collection[str]], store: LimitStore) -> None:
        self._known_routes = known_routes
        self._store = store
        self._configs: dict[str, RateLimitConfig] = {}

    @property
    def active(self) -> bool:
        return bool(self._configs)

    async def check(self, model: str) -> None:
        """Take a token for a request to ``model``; raises ``RateLimitedError`` (with ``retry_after``)."""
        routes = (GLOBAL_ROUTE,) if model == GLOBAL_ROUTE else (GLOBAL_ROUTE, model)
        draws = [c.draw(route) for route in routes if (c := self._configs.get(route)) is not None]
        if not draws:
            return
        refusal = await self._store.acquire(draws)
        if refusal is not None:
            wait = refusal.retry_after
            raise RateLimitedError(
                f"Rate limit exceeded for `{model}`. Retry after {wait:.2f} seconds.", retry_after=wait
            )

    def apply(self, route: str, requests_per_second: int, burst_size: int, enabled: bool) -> None:
        """Set (or with ``enabled=False`` remove) the limit of ``route``; raises ``ValueError`` and changes
        nothing when a value is invalid or the route is unknown."""
        config = self.validate(route, requests_per_second, burst_size, enabled)
        if config is None:
            self._configs.pop(route, None)
        else:
            self._configs[route] = config

    def validate(self, route: str, requests_per_second: int, burst_size: int, enabled: bool) -> RateLimitConfig | None:
        """The limit these values set on ``route`` (``None``: removed); ``ValueError`` when they are invalid."""
        if requests_per_second < 0 or burst_size < 0:
            raise ValueError("requests_per_second and burst_size must not be negative")
        if route != GLOBAL_ROUTE and route not in self._known_routes():
            raise ValueError(f"unknown route {route!r}: use a served model name or '*'")
        if not enabled:
            return None
        if requests_per_second < 1:
            raise ValueError("requests_per_second must be at least 1 while the limit is enabled")
        if burst_size < 1:
            raise ValueError("burst_size must be at least 1 while the limit is enabled")
        return RateLimitConfig(requests_per_second, burst_size)

    def replace(self, limits: Mapping[str, tuple[int, int]]) -> None:
        """Put the limits the control state holds in force: route → (requests per second, burst)."""
        self._configs = {route: RateLimitConfig(rps, burst) for route, (rps, burst) in limits.items()}

    def config(self, route: str) -> RateLimitConfig | None:
        return self._configs.get(route)

    def configs(self) -> dict[str, RateLimitConfig]:
        return dict(self._configs)

    def clear(self) -> None:
        """Remove every limit (a forced reload)."""
        self._configs.clear()
