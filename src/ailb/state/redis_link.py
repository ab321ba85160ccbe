"""The one connection to Redis (``REDIS_URL``): the ``redis`` package is imported here and in no other module
outside ``state/``, and its errors become ``SharedStateUnavailable`` here.

The link is *up* or *down*. While up, every call goes to Redis with a short timeout and no retry (a script
that timed out may have run: retrying it could take twice). The first failure marks the link down: callers
then get ``SharedStateUnavailable`` at once, without waiting on a dead server, and fall back to what they hold
in process, while one background task reconnects with backoff (``BACKOFF_FIRST`` doubling to ``BACKOFF_MAX``).
When Redis answers again the link loads the scripts, comes up, and runs the ``on_up`` hooks, which bring
callers back in step (the limit store merges what it counted meanwhile, the control state re-reads).

Scripts are loaded once per connection to a server (``SCRIPT LOAD``) and run by their SHA (``EVALSHA``); a
server that lost them (restarted, ``SCRIPT FLUSH``) gets them again on ``NOSCRIPT``. Script calls made during
one turn of the event loop share one round trip (``redis_batch.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ailb.state.base import SharedStateUnavailable
from ailb.state.redis_batch import ScriptBatcher

log = logging.getLogger("ailb.state")
T = TypeVar("T")
CALL_TIMEOUT = 0.5  # seconds: a call to Redis longer than this counts as Redis being down
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 2.0
CONNECTION_ERRORS = (RedisError, OSError, TimeoutError)


class SharedStateObserver(Protocol):
    """What the link reports (implemented by ``observability.Metrics``)."""

    def shared_state_failed(self, operation: str) -> None: ...


class RedisLink:
    def __init__(
        self,
        url: str,
        observer: SharedStateObserver,
        scripts: Mapping[str, str],
        *,
        timeout: float = CALL_TIMEOUT,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self.client: redis.Redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
            health_check_interval=0,
        )
        self.where = _describe(self.client)
        self._observer = observer
        self._sources = dict(scripts)
        self._shas = {name: hashlib.sha1(source.encode()).hexdigest() for name, source in scripts.items()}
        self._backoff_max = backoff_max
        self._up = asyncio.Event()
        self._on_up: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._on_down: list[Callable[[], None]] = []
        self._reconnecting: asyncio.Task[None] | None = None
        self._hooks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._batcher = ScriptBatcher(self.call, self._shas, self._sources)

    @property
    def up(self) -> bool:
        return self._up.is_set()

    def on_up(self, hook: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``hook`` every time the link comes up (at start and after each outage)."""
        self._on_up.append(hook)

    def on_down(self, hook: Callable[[], None]) -> None:
        self._on_down.append(hook)

    async def wait_up(self) -> None:
        await self._up.wait()

    # --- lifecycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect now; if Redis cannot be reached, start degraded and keep trying in the background."""
        try:
            await self._connect()
        except CONNECTION_ERRORS as exc:
            log.warning("shared state: cannot reach Redis at %s (%s); serving with per-instance limits "
                        "until it answers", self.where, _reason(exc))  # fmt: skip
            self._observer.shared_state_failed("connect")
            self._reconnect_later()
            return
        await self._came_up()

    async def aclose(self) -> None:
        self._closed = True
        for task in [self._reconnecting, *self._hooks]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*[t for t in [self._reconnecting, *self._hooks] if t is not None], return_exceptions=True)
        await self._batcher.aclose()
        await self.client.aclose()

    # --- calls -----------------------------------------------------------------------------------------------
    async def call(self, operation: str, work: Callable[[redis.Redis], Awaitable[T]]) -> T:
        """``await work(client)``; ``SharedStateUnavailable`` at once while the link is down, or when it fails."""
        if not self._up.is_set():
            raise SharedStateUnavailable(f"Redis at {self.where} is unavailable")
        try:
            return await work(self.client)
        except CONNECTION_ERRORS as exc:
            self.failed(operation, exc)
            raise SharedStateUnavailable(f"Redis at {self.where} is unavailable") from None

    async def script(self, operation: str, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run the named script atomically on the server (``EVALSHA``, reloading it on ``NOSCRIPT``), in one
        pipeline with the other scripts called during this turn of the event loop (``redis_batch.py``)."""
        if not self._up.is_set():
            raise SharedStateUnavailable(f"Redis at {self.where} is unavailable")
        return await self._batcher.run(operation, name, keys, args)

    def failed(self, operation: str, exc: BaseException) -> None:
        """Count a failed call; the first one while up marks the link down and starts reconnecting."""
        self._observer.shared_state_failed(operation)
        if not self._up.is_set() or self._closed:
            return
        self._up.clear()
        log.warning("shared state: Redis at %s failed (%s: %s); per-instance limits until it is back",
                    self.where, operation, _reason(exc))  # fmt: skip
        for hook in self._on_down:
            hook()
        self._reconnect_later()

    # --- internals -------------------------------------------------------------------------------------------
    async def _connect(self) -> None:
        await self.client.ping()
        for source in self._sources.values():
            await self.client.script_load(source)

    def _reconnect_later(self) -> None:
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.create_task(self._reconnect(), name="ailb-redis-reconnect")

    async def _reconnect(self) -> None:
        delay = BACKOFF_FIRST
        while not self._closed:
            await asyncio.sleep(delay)
            try:
                await self.client.connection_pool.disconnect()  # no stale connection survives an outage
                await self._connect()
            except CONNECTION_ERRORS:
                self._observer.shared_state_failed("connect")
                delay = min(delay * 2, self._backoff_max)
                continue
            log.info("shared state: Redis at %s is back", self.where)
            await self._came_up()
            return

    async def _came_up(self) -> None:
        self._up.set()
        for hook in self._on_up:
            task = asyncio.create_task(hook())
            self._hooks.add(task)
            task.add_done_callback(self._hook_done)
        await asyncio.gather(*list(self._hooks), return_exceptions=True)

    def _hook_done(self, task: asyncio.Task[None]) -> None:
        self._hooks.discard(task)
        if not task.cancelled() and isinstance(task.exception(), Exception) and not isinstance(
            task.exception(), SharedStateUnavailable
        ):
            log.error("shared state: bringing this instance back in step failed: %r", task.exception())


def _describe(client: redis.Redis) -> str:
    """Where Redis is, for logs: host, port and database, never the password."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix:{kwargs['path']}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]
