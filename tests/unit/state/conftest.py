"""The ``LimitStore`` contract runs against every implementation: in process, on a real Redis, and the fleet
store (Redis with its per-instance fallback) while Redis answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from ailb.state import InProcessLimitStore, LimitStore
from ailb.state.fleet import FleetLimitStore
from ailb.state.redis_limits import RedisLimitStore
from ailb.state.redis_link import RedisLink
from ailb.state.redis_scripts import SCRIPTS
from tests.redis_server import RedisServer

MakeStore = Callable[[Callable[[], float]], Awaitable[LimitStore]]


class Failures:
    """Counts what the link reports (``observability.Metrics`` in the gateway)."""

    def __init__(self) -> None:
        self.operations: list[str] = []

    def shared_state_failed(self, operation: str) -> None:
        self.operations.append(operation)


@pytest_asyncio.fixture(params=["in-process", "redis", "fleet"])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[MakeStore]:
    kind: str = request.param
    links: list[RedisLink] = []
    stores: list[Any] = []

    async def make(clock: Callable[[], float]) -> LimitStore:
        if kind == "in-process":
            return InProcessLimitStore(clock=clock)
        server: RedisServer = request.getfixturevalue("redis_server")
        link = RedisLink(server.url, Failures(), SCRIPTS)  # started once the stores have hooked on
        links.append(link)
        store: LimitStore = RedisLimitStore(link, clock=clock)
        if kind == "fleet":
            store = FleetLimitStore(store, divisor=1, local=lambda: InProcessLimitStore(clock=clock))  # type: ignore[arg-type]
        await link.start()
        assert link.up and (not isinstance(store, FleetLimitStore) or store.shared), "Redis did not answer"
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.aclose()
    for link in links:
        await link.aclose()
