"""Control-plane state: in process, and on a real Redis shared by two "instances" (two links), including a Redis
that is down (writes refused, the last state kept) and one restarted empty (given back what the instances knew)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from ailb.state import ControlSnapshot, LocalControlState, SharedStateUnavailable
from ailb.state.redis_control import RedisControlState
from ailb.state.redis_link import RedisLink
from ailb.state.redis_scripts import SCRIPTS
from tests.polling import eventually
from tests.redis_server import RedisServer
from tests.unit.state.conftest import Failures


class Follower:
    """What an instance was told: every snapshot, and every reload asked of it."""

    def __init__(self) -> None:
        self.snapshots: list[ControlSnapshot] = []
        self.reloads: list[bool] = []

    @property
    def last(self) -> ControlSnapshot:
        return self.snapshots[-1]


MakeInstance = Callable[[str], Awaitable[tuple[RedisControlState, Follower]]]


@pytest_asyncio.fixture
async def make() -> AsyncIterator[MakeInstance]:
    """``await instance(url)``: a control state on its own link, as one AILB process has."""
    made: list[tuple[RedisLink, RedisControlState]] = []

    async def make_instance(url: str) -> tuple[RedisControlState, Follower]:
        link = RedisLink(url, Failures(), SCRIPTS, backoff_max=0.2)
        await link.start()
        state = RedisControlState(link, f"instance-{len(made)}")
        follower = Follower()
        await state.start(follower.snapshots.append, follower.reloads.append)
        made.append((link, state))
        return state, follower

    yield make_instance
    for link, state in made:
        await state.aclose()
        await link.aclose()


async def test_in_process_changes_are_reported_at_once() -> None:
    state, follower = LocalControlState(), Follower()
    await state.start(follower.snapshots.append, follower.reloads.append)
    assert follower.last == ControlSnapshot()
    await state.set_weights("*", {"a": 100, "b": 0})
    await state.set_limit("gpt-4o", (5, 10))
    assert follower.last.weights == {"*": {"a": 100, "b": 0}} and follower.last.limits == {"gpt-4o": (5, 10)}
    assert await state.bump_version() == 2
    await state.set_limit("gpt-4o", None)
    await state.clear()
    assert follower.last == ControlSnapshot(routes_version=2)
    await state.announce_reload(True)
    assert follower.reloads == []


async def test_a_change_through_one_instance_reaches_the_other(redis_server: RedisServer, make: MakeInstance) -> None:
    first, seen_first = await make(redis_server.url)
    second, seen_second = await make(redis_server.url)
    assert seen_second.last == ControlSnapshot()  # a fresh Redis starts at routes version 1

    await first.set_weights("*", {"blue": 100, "green": 0})
    await eventually(lambda: seen_second.last.weights == {"*": {"blue": 100, "green": 0}})
    await second.set_limit("gpt-4o", (5, 10))
    await eventually(lambda: seen_first.last.limits == {"gpt-4o": (5, 10)})
    assert await first.bump_version() == 2
    await eventually(lambda: seen_second.last.routes_version == 2)
    await second.clear()
    await eventually(lambda: seen_first.last == ControlSnapshot(routes_version=2))

    await first.announce_reload(True)
    await eventually(lambda: seen_second.reloads == [True])
    assert seen_first.reloads == []  # the instance that was asked has reloaded already


async def test_redis_down_refuses_changes_and_keeps_the_last_state(own_redis: RedisServer, make: MakeInstance) -> None:
    first, seen = await make(own_redis.url)
    await first.set_limit("*", (100, 200))
    own_redis.stop()
    with pytest.raises(SharedStateUnavailable):
        await first.set_weights("*", {"a": 50})
    assert first.snapshot().limits == {"*": (100, 200)} and first.snapshot().weights == {}
    own_redis.start()
    await eventually(lambda: first.link.up)
    await first.set_weights("*", {"a": 50})
    assert seen.last.weights == {"*": {"a": 50}} and seen.last.limits == {"*": (100, 200)}


async def test_a_redis_restarted_empty_is_given_the_state_back(tmp_path: Path, make: MakeInstance) -> None:
    server = RedisServer(tmp_path / "redis").start()  # nothing kept on disk
    try:
        first, seen_first = await make(server.url)
        second, seen_second = await make(server.url)
        await first.set_weights("gpt-4o", {"a": 30, "b": 70})
        await first.bump_version()
        await eventually(lambda: seen_second.last.routes_version == 2)
        server.stop()
        server.start()
        await eventually(lambda: b"gpt-4o" in server.command("HKEYS", "ailb:control:weights"))
        assert server.command("GET", "ailb:control:version").endswith(b"2\r\n")
        await second.set_limit("*", (1, 1))  # and it is shared as before
        await eventually(lambda: seen_first.last.limits == {"*": (1, 1)})
        assert seen_first.last.weights == {"gpt-4o": {"a": 30, "b": 70}}
    finally:
        server.stop()
