"""Composition root: builds what outlives a reload and the first ``Runtime``; owns start-up, reload and shutdown."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ailb.dashboard.series import TrafficSeries
from ailb.governance.governor import Governor
from ailb.observability.metrics import Metrics
from ailb.observability.tracing import Tracing, build_tracing
from ailb.providers.kinds import provider_kinds
from ailb.redaction import Redactor
from ailb.routing.ratelimit import RateLimiter
from ailb.routing.strategies import validate_strategy
from ailb.runtime import Lasting, Runtime, build_provider, build_runtime
from ailb.settings import ConfigError, Settings, load_settings
from ailb.state import (
    ControlSnapshot,
    InProcessLimitStore,
    JournalError,
    SharedStateUnavailable,
    SpendJournal,
    build_shared_state,
)
from ailb.workers import check_workers

if TYPE_CHECKING:
    import grpc

    from ailb.embeddings.base import Embedder
    from ailb.memory.service import MemoryService
    from ailb.providers.base import Provider
    from ailb.rag.service import RagService

log = logging.getLogger("ailb")


def secrets_of(settings: Settings) -> list[str]:
    """Every secret the configuration holds, for the redactor (logs, errors and answers)."""
    keys = [d.api_key for d in settings.deployments] + list(settings.api_keys) + [k.key for k in settings.client_keys]
    keys += settings.tracing.headers.values()  # an OTLP collector's credentials
    redis_password = urlsplit(settings.redis_url).password or ""
    return [k for k in (*keys, settings.admin_token, settings.metrics_token, redis_password) if k]


def check_settings(settings: Settings) -> None:
    """Validation that needs more than the settings module knows."""
    try:
        validate_strategy(settings.routing_strategy)
    except ValueError as exc:
        raise ConfigError("ROUTING_STRATEGY", str(exc)) from None
    if settings.embedding_backend == "provider" and settings.deployment(settings.embedding_deployment) is None:
        raise ConfigError("EMBEDDING_DEPLOYMENT", "must name a configured deployment when EMBEDDING_BACKEND=provider")
    check_workers(settings)


_CONFIGURING_VARS = [kind.configured_by for kind in provider_kinds()]
NO_DEPLOYMENTS = (
    f"no provider is configured: set {', '.join(_CONFIGURING_VARS[:-1])} or {_CONFIGURING_VARS[-1]}, "
    "or list deployments in the AILB_CONFIG file"
)


class Gateway:
    """The one long-lived holder of a running AILB: what outlives a reload (``Lasting``), the current ``Runtime``
    (``runtime``, replaced in one assignment by ``reload``), start-up and shutdown. HTTP routes and the gRPC
    servicer see it through the ports they declare (``ailb.http.ports``, ``ailb.control.ports``)."""

    def __init__(
        self, settings: Settings, env: Mapping[str, str] | None = None, *, redactor: Redactor | None = None
    ) -> None:
        check_settings(settings)
        # One redactor for everything that leaves the process (logs, errors, answers), re-armed on reload.
        self.redactor = redactor if redactor is not None else Redactor()
        self.redactor.set_secrets(secrets_of(settings))
        self._env = None if env is None else dict(env)
        self.routes_version = 1
        self.metrics = Metrics()
        self.metrics.configure_from(settings)
        # Chosen once: tracing settings are not reloaded (like the stores, they need a restart).
        self.tracing: Tracing = build_tracing(settings.tracing, self.redactor)
        providers = {d.name: build_provider(d, self.redactor) for d in settings.deployments}
        # Limits and control-plane state: in this process, or with REDIS_URL on Redis, shared by the fleet.
        divisor = settings.expected_instances * settings.workers
        self.shared = build_shared_state(settings.redis_url, divisor, self.metrics)
        self.embedder: Embedder | None = None
        self.memory: MemoryService | None = None
        self.rag: RagService | None = None
        self._build_stores(settings, providers)
        self.local_embedder = self._local_embedder(settings)
        self.lasting = Lasting(
            redactor=self.redactor,
            metrics=self.metrics,
            tracing=self.tracing,
            traffic=TrafficSeries(),  # the dashboard's charts
            shared=self.shared,
            governor=Governor(self.shared.limits, self.metrics),
            rate_limits=RateLimiter(lambda: list(self.runtime.router.public_models()), self.shared.limits),
            memory=self.memory,
            rag=self.rag,
            local_embedder=self.local_embedder,
            started_at=time.time(),
        )
        self.runtime: Runtime = build_runtime(settings, self.lasting, providers)
        self.grpc_server: grpc.aio.Server | None = None
        self.grpc_port: int | None = None
        if not settings.deployments:
            log.warning("%s; /healthz answers 503 until a reload brings one", NO_DEPLOYMENTS)
        self._reload_lock = asyncio.Lock()
        self._started = False
        self._retired: set[asyncio.Task[Any]] = set()

    def _build_stores(self, settings: Settings, providers: Mapping[str, Provider]) -> None:
        if not (settings.memory.enabled or settings.rag.enabled):
            return
        from ailb.embeddings.factory import build_embedder

        self.embedder = build_embedder(settings, dict(providers))
        if settings.memory.enabled:
            from ailb.memory.service import MemoryService

            self.memory = MemoryService.from_settings(settings, self.embedder, metrics=self.metrics)
        if settings.rag.enabled:
            from ailb.rag.service import RagService

            self.rag = RagService.from_settings(settings, self.embedder, metrics=self.metrics)

    def _local_embedder(self, settings: Settings) -> Embedder | None:
        """The packaged model for ``/v1/embeddings`` (``ENABLE_LOCAL_EMBEDDINGS``): memory's and RAG's own when they
        use it, else one of its own that loads on its first request."""
        if not settings.local_embeddings:
            return None
        from ailb.embeddings.factory import build_local_embedder, is_packaged

        if self.embedder is not None and is_packaged(settings):
            return self.embedder
        return build_local_embedder(settings)

    async def start(self, *, grpc: bool = True) -> None:
        """Open stores, start background work and the gRPC server. Idempotent: ``ailb serve`` calls it before
        uvicorn starts (so a bad ``MEMORY_PATH`` or ``GRPC_PORT`` is a clean error), the app's lifespan again."""
        if self._started:
            return
        self._started = True
        settings = self.runtime.settings
        await self.shared.start(self._apply_control, self._reload_requested)
        await self._persist_spend(self.runtime)
        if self.embedder is not None:
            await self.embedder.start()
        if self.memory is not None:
            await self.memory.start()
        if self.rag is not None:
            await self.rag.start()
        await self.runtime.router.start()
        self.lasting.traffic.start(lambda: self.runtime.router.deployments)
        if grpc and settings.enable_grpc:
            from ailb.control.server import start_grpc

            self.grpc_server, self.grpc_port = await start_grpc(
                self, settings.host, settings.grpc_port, reuse_port=settings.workers > 1
            )

    async def reload(self, force: bool = False, announce: bool = True) -> tuple[bool, str]:
        """Re-read env and config file and swap in the new runtime whole, or keep the old one on error.
        Requests in flight finish on the runtime they started on.

        ``announce``: this process was asked (gRPC ``Reload``, ``SIGHUP``), so it also counts the reload in the
        routes version and asks every process sharing its control state to reload; ``False`` when it was one
        of those asked."""
        async with self._reload_lock:
            old = self.runtime
            try:
                settings = load_settings(self._env, old.settings.config_path or None)
                check_settings(settings)
            except ConfigError as exc:
                log.warning("reload rejected: %s", exc)
                self.metrics.config_reloaded(False)
                return False, str(exc)
            # The previous secrets stay masked as well: requests in flight still use them.
            self.redactor.set_secrets([*secrets_of(old.settings), *secrets_of(settings)])
            new = build_runtime(settings, self.lasting, old.providers, previous=old.router)
            await new.router.start()
            self.runtime = new
            self.metrics.configure_from(settings)
            self.metrics.config_reloaded(True)
            try:
                await self._persist_spend(new)
            except ConfigError as exc:
                log.error("per-key spend stays in memory: %s", exc)
            shared = await self._announce_reload(force) if announce else ""
            retired = [p for name, p in old.providers.items() if new.providers.get(name) is not p]
            task = asyncio.create_task(self._retire(old, retired))
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)
            names = ", ".join(d.name for d in settings.deployments)
            log.info("configuration reloaded: deployments %s", names)
            return True, f"reloaded: {len(settings.deployments)} deployments ({names}){shared}"

    async def _announce_reload(self, force: bool) -> str:
        """Count the reload in the routes version and have every process sharing the control state reload
        (``force``: weights and limits are cleared for all). Returns what the reload answer should add."""
        try:
            if force:
                await self.shared.control.clear()
            await self.shared.control.bump_version()
            await self.shared.control.announce_reload(force)
        except SharedStateUnavailable:
            log.warning("reloaded, but the shared state is unavailable: other instances were not reloaded")
            return "; shared state unavailable: other instances were not reloaded"
        return ""

    def _reload_requested(self, force: bool) -> None:
        """Another process was asked to reload: this one re-reads its own environment and file too."""
        task = asyncio.create_task(self.reload(force, announce=False))
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    def _apply_control(self, snapshot: ControlSnapshot) -> None:
        """Put the control state's weights, rate limits and routes version in force (from any process)."""
        self.runtime.router.load_traffic_weights(snapshot.weights)
        self.lasting.rate_limits.replace(snapshot.limits)
        self.routes_version = snapshot.routes_version

    async def _persist_spend(self, runtime: Runtime) -> None:
        """Keep per-key spend in ``SPEND_PATH`` once a key is metered (``ConfigError`` if the file is unusable).
        With Redis, spend lives there (and in Redis's own persistence) instead."""
        limits = self.shared.limits
        if not isinstance(limits, InProcessLimitStore) or limits.persistent:
            return
        if not runtime.keys.metered or not runtime.settings.spend_path:
            return
        try:
            await limits.persist_to(SpendJournal(runtime.settings.spend_path))
        except JournalError as exc:
            raise ConfigError("SPEND_PATH", str(exc)) from None

    async def _retire(self, old: Runtime, providers: list[Provider]) -> None:
        """Close what the old runtime used once its in-flight requests had time to finish."""
        router = old.router
        await router.aclose()
        deadline = time.monotonic() + self.runtime.settings.drain_timeout
        while time.monotonic() < deadline and any(d.in_flight for d in router.deployments):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        for provider in providers:
            await provider.aclose()

    async def aclose(self) -> None:
        if self.grpc_server is not None:
            from ailb.control.server import stop_grpc

            await stop_grpc(self.grpc_server, min(5.0, self.runtime.settings.drain_timeout))
        await self.lasting.traffic.aclose()
        await self.runtime.router.aclose()
        for task in list(self._retired):
            task.cancel()
        await self.lasting.governor.drain()
        await self.shared.aclose()
        if self.memory is not None:
            await self.memory.aclose()
        if self.rag is not None:
            await self.rag.aclose()
        if self.embedder is not None:
            await self.embedder.aclose()
        if self.local_embedder is not None and self.local_embedder is not self.embedder:
            await self.local_embedder.aclose()
        for provider in self.runtime.providers.values():
            await provider.aclose()
        await self.tracing.aclose()


def build_gateway(settings: Settings | None = None, env: Mapping[str, str] | None = None) -> Gateway:
    return Gateway(settings if settings is not None else load_settings(env), env)
