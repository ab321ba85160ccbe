"""Control-plane state: what the gRPC control plane sets at run time and every process must agree on.

- traffic weights per route (``SetTrafficWeight``): route → deployment → 0-100;
- rate limits per route (``ApplyRateLimit``): route → (requests per second, burst);
- the routes version (``GetRoutes``), one more with every reload.

The gateway validates a change against its configuration, writes it here, and applies what this state
*reports* through ``on_change`` — never its own copy — so every process applies the same snapshot the same
way. In process (``LocalControlState``) a change is reported at once; on Redis (``state/redis_control.py``) it
is also published to every other AILB process sharing the server. ``announce_reload`` asks the others to
reload too (``on_reload``); in process there is no other to ask.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Protocol, TypeVar

V = TypeVar("V")
Weights = Mapping[str, Mapping[str, int]]
Limits = Mapping[str, tuple[int, int]]


@dataclass(frozen=True, slots=True)
class ControlSnapshot:
    weights: Weights = field(default_factory=lambda: MappingProxyType({}))
    limits: Limits = field(default_factory=lambda: MappingProxyType({}))
    routes_version: int = 1


OnChange = Callable[[ControlSnapshot], None]
OnReload = Callable[[bool], None]


class ControlState(Protocol):
    def snapshot(self) -> ControlSnapshot:
        """The state as last known (no I/O)."""

    async def start(self, on_change: OnChange, on_reload: OnReload) -> None:
        """Read the current state (reported through ``on_change``) and follow changes from now on."""

    async def set_weights(self, route: str, weights: Mapping[str, int]) -> None:
        """Replace ``route``'s weights (already validated). ``SharedStateUnavailable``: nothing changed."""

    async def set_limit(self, route: str, limit: tuple[int, int] | None) -> None:
        """Set (``None``: remove) ``route``'s rate limit (already validated)."""

    async def clear(self) -> None:
        """Remove every weight and limit (a forced reload)."""

    async def bump_version(self) -> int:
        """Count a reload: the routes version goes up by one; returns it."""

    async def announce_reload(self, force: bool) -> None:
        """Ask every other process sharing this state to reload its configuration."""

    async def aclose(self) -> None: ...


class LocalControlState:
    """Control state of one process."""

    def __init__(self) -> None:
        self._snapshot = ControlSnapshot()
        self._on_change: OnChange | None = None

    def snapshot(self) -> ControlSnapshot:
        return self._snapshot

    async def start(self, on_change: OnChange, on_reload: OnReload) -> None:
        self._on_change = on_change
        on_change(self._snapshot)

    async def set_weights(self, route: str, weights: Mapping[str, int]) -> None:
        self._change(replace(self._snapshot, weights=with_entry(self._snapshot.weights, route, dict(weights))))

    async def set_limit(self, route: str, limit: tuple[int, int] | None) -> None:
        self._change(replace(self._snapshot, limits=with_entry(self._snapshot.limits, route, limit)))

    async def clear(self) -> None:
        self._change(ControlSnapshot(routes_version=self._snapshot.routes_version))

    async def bump_version(self) -> int:
        self._change(replace(self._snapshot, routes_version=self._snapshot.routes_version + 1))
        return self._snapshot.routes_version

    async def announce_reload(self, force: bool) -> None:
        """No other process shares this state."""

    async def aclose(self) -> None:
        self._on_change = None

    def _change(self, snapshot: ControlSnapshot) -> None:
        self._snapshot = snapshot
        if self._on_change is not None:
            self._on_change(snapshot)


def with_entry(table: Mapping[str, V], key: str, value: V | None) -> Mapping[str, V]:
    """A copy of ``table`` with ``key`` set to ``value`` (removed when ``None``)."""
    copy = {k: v for k, v in table.items() if k != key}
    if value is not None:
        copy[key] = value
    return MappingProxyType(copy)
