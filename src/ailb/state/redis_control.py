"""Control-plane state on Redis, pushed to every AILB process that shares the server.

Stored under ``ailb:control:*`` — ``weights`` (hash: route → JSON of deployment → weight), ``limits`` (hash:
route → "requests_per_second burst"), ``version`` (the routes version) — and every change is published on the
``ailb:control`` channel in the same transaction. Each process listens on that channel and, on a message,
re-reads the whole state in one transaction and applies it: a change made through any process governs all
of them as fast as a published message travels (milliseconds), and a message lost to an outage does not
matter, because after reconnecting a process subscribes again and re-reads everything.

A Redis that lost its data (restarted without persistence) is given back the state this process last knew,
once, atomically (the first process back wins), so weights and limits survive a Redis restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ailb.state.base import SharedStateUnavailable
from ailb.state.control import ControlSnapshot, Limits, OnChange, OnReload, Weights, with_entry
from ailb.state.redis_link import BACKOFF_FIRST, CONNECTION_ERRORS, RedisLink

log = logging.getLogger("ailb.state")
WEIGHTS = "ailb:control:weights"
LIMITS = "ailb:control:limits"
VERSION = "ailb:control:version"
CHANNEL = "ailb:control"
PING_EVERY = 5  # seconds without a message before the subscription is checked with a PING

SEED = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
for _, pair in ipairs(cjson.decode(ARGV[2])) do redis.call('HSET', KEYS[1], pair[1], pair[2]) end
for _, pair in ipairs(cjson.decode(ARGV[3])) do redis.call('HSET', KEYS[2], pair[1], pair[2]) end
redis.call('SET', KEYS[3], ARGV[1])
return 1
"""


class RedisControlState:
    def __init__(self, link: RedisLink, instance: str) -> None:
        self.link = link
        self.instance = instance
        self._snapshot = ControlSnapshot()
        self._on_change: OnChange | None = None
        self._on_reload: OnReload | None = None
        self._listener: asyncio.Task[None] | None = None
        self._closed = False
        self._state_message = json.dumps({"kind": "state", "origin": instance})

    def snapshot(self) -> ControlSnapshot:
        return self._snapshot

    async def start(self, on_change: OnChange, on_reload: OnReload) -> None:
        self._on_change, self._on_reload = on_change, on_reload
        if self.link.up:
            try:
                await self._refresh()
            except SharedStateUnavailable:
                pass
        on_change(self._snapshot)
        self._listener = asyncio.create_task(self._listen(), name="ailb-control-listener")

    async def aclose(self) -> None:
        self._closed = True  # besides the cancellation, which a read timing out at that moment may swallow
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None

    # --- changes ---------------------------------------------------------------------------------------------
    async def set_weights(self, route: str, weights: Mapping[str, int]) -> None:
        await self._write(lambda pipe: pipe.hset(WEIGHTS, route, json.dumps(dict(weights), sort_keys=True)))
        self._report(replace(self._snapshot, weights=with_entry(self._snapshot.weights, route, dict(weights))))

    async def set_limit(self, route: str, limit: tuple[int, int] | None) -> None:
        if limit is None:
            await self._write(lambda pipe: pipe.hdel(LIMITS, route))
        else:
            await self._write(lambda pipe: pipe.hset(LIMITS, route, f"{limit[0]} {limit[1]}"))
        self._report(replace(self._snapshot, limits=with_entry(self._snapshot.limits, route, limit)))

    async def clear(self) -> None:
        await self._write(lambda pipe: pipe.delete(WEIGHTS, LIMITS))
        self._report(ControlSnapshot(routes_version=self._snapshot.routes_version))

    async def bump_version(self) -> int:
        async def bump(client: Any) -> int:
            async with client.pipeline(transaction=True) as pipe:
                pipe.incr(VERSION)
                pipe.publish(CHANNEL, self._state_message)
                version, _ = await pipe.execute()
                return int(version)

        version = await self.link.call("control", bump)
        self._report(replace(self._snapshot, routes_version=version))
        return version

    async def announce_reload(self, force: bool) -> None:
        message = json.dumps({"kind": "reload", "origin": self.instance, "force": force})
        await self.link.call("control", lambda client: client.publish(CHANNEL, message))

    async def _write(self, stage: Any) -> None:
        async def write(client: Any) -> None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.setnx(VERSION, self._snapshot.routes_version)
                stage(pipe)
                pipe.publish(CHANNEL, self._state_message)
                await pipe.execute()

        await self.link.call("control", write)

    def _report(self, snapshot: ControlSnapshot) -> None:
        self._snapshot = snapshot
        if self._on_change is not None:
            self._on_change(snapshot)

    # --- following the others --------------------------------------------------------------------------------
    async def _listen(self) -> None:
        while not self._closed:
            await self.link.wait_up()
            pubsub = self.link.client.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                await self._refresh()  # after subscribing: no change can fall between the read and the messages
                await self._follow(pubsub)
            except CONNECTION_ERRORS as exc:
                self.link.failed("subscribe", exc)
            except SharedStateUnavailable:
                pass
            finally:
                await _close_quietly(pubsub)
            await asyncio.sleep(BACKOFF_FIRST)

    async def _follow(self, pubsub: Any) -> None:
        idle = 0.0
        while not self._closed:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None:
                idle += 1.0
                if idle >= PING_EVERY:  # a connection that died silently fails this
                    await pubsub.ping()
                    idle = 0.0
                continue
            idle = 0.0
            if message.get("type") == "message":
                await self._handle(message.get("data"))

    async def _handle(self, data: Any) -> None:
        try:
            event = json.loads(data)
        except (TypeError, ValueError):
            return
        if not isinstance(event, dict):
            return
        if event.get("kind") == "state":
            await self._refresh()
        elif event.get("kind") == "reload" and event.get("origin") != self.instance and self._on_reload is not None:
            self._on_reload(bool(event.get("force")))

    async def _refresh(self) -> None:
        weights, limits, version = await self.link.call("control", _read_all)
        if version is None:  # Redis lost its data: give it what this process knew
            await self.link.call("control", self._seed)
            weights, limits, version = await self.link.call("control", _read_all)
        self._report(ControlSnapshot(_weights(weights), _limits(limits), int(version or 1)))

    async def _seed(self, client: Any) -> None:
        snapshot = self._snapshot
        weights = [[route, json.dumps(dict(w), sort_keys=True)] for route, w in snapshot.weights.items()]
        limits = [[route, f"{rps} {burst}"] for route, (rps, burst) in snapshot.limits.items()]
        await client.eval(SEED, 3, WEIGHTS, LIMITS, VERSION, snapshot.routes_version, json.dumps(weights),
                          json.dumps(limits))  # fmt: skip


async def _close_quietly(pubsub: Any) -> None:
    try:
        await pubsub.aclose()
    except CONNECTION_ERRORS:
        pass


async def _read_all(client: Any) -> list[Any]:
    async with client.pipeline(transaction=True) as pipe:
        pipe.hgetall(WEIGHTS)
        pipe.hgetall(LIMITS)
        pipe.get(VERSION)
        result: list[Any] = await pipe.execute()
        return result


def _weights(raw: Mapping[str, str]) -> Weights:
    weights: dict[str, dict[str, int]] = {}
    for route, text in raw.items():
        try:
            parsed = json.loads(text)
            weights[route] = {str(name): int(w) for name, w in parsed.items() if 0 <= int(w) <= 100}
        except (TypeError, ValueError, AttributeError):
            log.warning("shared state: ignoring unreadable traffic weights stored for route %r", route)
    return weights


def _limits(raw: Mapping[str, str]) -> Limits:
    limits: dict[str, tuple[int, int]] = {}
    for route, text in raw.items():
        try:
            rps, burst = (int(part) for part in text.split())
        except ValueError:
            log.warning("shared state: ignoring an unreadable rate limit stored for route %r", route)
            continue
        if rps >= 1 and burst >= 1:
            limits[route] = (rps, burst)
    return limits
