"""Where limits and control-plane state live, chosen once at start-up: in this process, or on Redis.

``build_shared_state("")`` keeps everything in process (one AILB process, the default). With a Redis URL,
limits are the ``FleetLimitStore`` (Redis, with per-instance fallback limits while it is down) and the
control state is ``RedisControlState`` (stored in Redis and pushed to every process); both share one
``RedisLink``, whose health ``status()`` reports.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ailb.state.base import LimitStore
from ailb.state.control import ControlState, LocalControlState, OnChange, OnReload
from ailb.state.memory import InProcessLimitStore

if TYPE_CHECKING:
    from ailb.state.fleet import FleetLimitStore
    from ailb.state.redis_link import SharedStateObserver

DISABLED, OK, DEGRADED = "disabled", "ok", "degraded"


class NoObserver:
    def shared_state_failed(self, operation: str) -> None:
        """Nothing reported."""


@dataclass
class SharedState:
    limits: LimitStore
    control: ControlState
    fleet: FleetLimitStore | None = None  # when on Redis
    where: str = ""  # host:port/db of Redis, for logs and health (never the password)

    def status(self) -> str:
        """``disabled`` (in process), ``ok`` (Redis answers and holds this process's counts), ``degraded``."""
        if self.fleet is None:
            return DISABLED
        return OK if self.fleet.shared else DEGRADED

    async def start(self, on_change: OnChange, on_reload: OnReload) -> None:
        if self.fleet is not None:
            await self.fleet.redis.link.start()
        await self.limits.start()
        await self.control.start(on_change, on_reload)

    async def aclose(self) -> None:
        await self.control.aclose()
        await self.limits.aclose()
        if self.fleet is not None:
            await self.fleet.redis.link.aclose()


def build_shared_state(redis_url: str, divisor: int = 1, observer: SharedStateObserver | None = None) -> SharedState:
    """``divisor``: how many processes share the limits while Redis is down (instances × workers)."""
    if not redis_url:
        return SharedState(InProcessLimitStore(), LocalControlState())
    from ailb.state.fleet import FleetLimitStore
    from ailb.state.redis_control import RedisControlState
    from ailb.state.redis_limits import RedisLimitStore
    from ailb.state.redis_link import RedisLink
    from ailb.state.redis_scripts import SCRIPTS

    link = RedisLink(redis_url, observer if observer is not None else NoObserver(), SCRIPTS)
    fleet = FleetLimitStore(RedisLimitStore(link), divisor)
    return SharedState(fleet, RedisControlState(link, uuid.uuid4().hex), fleet, link.where)
