"""Composition root: builds providers, router, stores and services; owns start-up, reload and shutdown."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ailb import __version__
from ailb.dashboard.series import TrafficSeries
from ailb.embeddings.service import EmbeddingService
from ailb.governance.governor import Governor
from ailb.health import gateway_status
from ailb.observability.metrics import Metrics
from ailb.observability.tracing import Tracing, build_tracing
from ailb.providers.base import Provider
from ailb.providers.kinds import provider_kinds
from ailb.redaction import Redactor
from ailb.routing.ratelimit import RateLimiter
from ailb.routing.router import Router
from ailb.routing.strategies import validate_strategy
from ailb.service import ChatService
from ailb.settings import ConfigError, DeploymentConfig, Settings, load_settings
from ailb.state import (
    ControlSnapshot,
    InProcessLimitStore,
    JournalError,
    SharedStateUnavailable,
    SpendJournal,
    build_shared_state,
)
from ailb.tenancy import KeyRing
from ailb.workers import check_workers

if TYPE_CHECKING:
    import grpc

    from ailb.embeddings.base import Embedder
    from ailb.memory.service import MemoryService
    from ailb.rag.service import RagService

log = logging.getLogger("ailb")


def build_provider(config: DeploymentConfig, redactor: Redactor | None = None) -> Provider:
    """The adapter for ``config``; ``redactor`` (default: one knowing this deployment's key) scrubs its answers.

    The adapter's module is imported only when a deployment of its kind is built."""
    provider: Provider = config.kind.adapter_class()(config, redactor)
    return provider


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
    """Everything one running AILB holds. HTTP routes and the gRPC servicer read it through ``app.state``."""

    def __init__(
        self, settings: Settings, env: Mapping[str, str] | None = None, *, redactor: Redactor | None = None
    ) -> None:
        check_settings(settings)
        # One redactor for everything that leaves the process (logs, errors, answers), re-armed on reload.
        self.redactor = redactor if redactor is not None else Redactor()
        self.redactor.set_secrets(secrets_of(settings))
        self.settings = settings
        self._env = None if env is None else dict(env)
        self.started_at = time.time()
        self.reloaded_at = self.started_at
        self.routes_version = 1
        self.keys = KeyRing(settings.api_keys, settings.client_keys)
        self.metrics = Metrics()
        self.metrics.configure_from(settings)
        # Chosen once: tracing settings are not reloaded (like the stores, they need a restart).
        self.tracing: Tracing = build_tracing(settings.tracing, self.redactor)
        self.traffic = TrafficSeries()  # the dashboard's charts
        self.providers: dict[str, Provider] = {d.name: build_provider(d, self.redactor) for d in settings.deployments}
        self.router = Router(settings, self.providers, observer=self.metrics, tracing=self.tracing)
        # Limits and control-plane state: in this process, or with REDIS_URL on Redis, shared by the fleet.
        divisor = settings.expected_instances * settings.workers
        self.shared = build_shared_state(settings.redis_url, divisor, self.metrics)
        self.limits, self.control = self.shared.limits, self.shared.control
        self.governor = Governor(self.limits, self.metrics)
        self.rate_limits = RateLimiter(lambda: list(self.router.public_models()), self.limits)
        self.embedder: Embedder | None = None
        self.memory: MemoryService | None = None
        self.rag: RagService | None = None
        self._build_stores()
        self.service = ChatService(self.router, self.memory, self.rag, self.tracing)
        self.local_embedder = self._local_embedder()
        self.embeddings = EmbeddingService(self.router, self.local_embedder)
        self.grpc_server: grpc.aio.Server | None = None
        self.grpc_port: int | None = None
        if not settings.deployments:
            log.warning("%s; /healthz answers 503 until a reload brings one", NO_DEPLOYMENTS)
        self._reload_lock = asyncio.Lock()
        self._started = False
        self._retired: set[asyncio.Task[Any]] = set()

    def _build_stores(self) -> None:
        settings = self.settings
        if not (settings.memory.enabled or settings.rag.enabled):
            return
        from ailb.embeddings.factory import build_embedder

        self.embedder = build_embedder(settings, self.providers)
        if settings.memory.enabled:
            from ailb.memory.service import MemoryService

            self.memory = MemoryService.from_settings(settings, self.embedder, metrics=self.metrics)
        if settings.rag.enabled:
            from ailb.rag.service import RagService

            limits = self.keys.collection_limits()
            self.rag = RagService.from_settings(settings, self.embedder, allowed=limits, metrics=self.metrics)

    def _local_embedder(self) -> Embedder | None:
        """The packaged model for ``/v1/embeddings`` (``ENABLE_LOCAL_EMBEDDINGS``): memory's and RAG's own when they
        use it, else one of its own that loads on its first request."""
        if not self.settings.local_embeddings:
            return None
        from ailb.embeddings.factory import build_local_embedder, is_packaged

        if self.embedder is not None and is_packaged(self.settings):
            return self.embedder
        return build_local_embedder(self.settings)

    async def start(self, *, grpc: bool = True) -> None:
        """Open stores, start background work and the gRPC server. Idempotent: ``ailb serve`` calls it before
        uvicorn starts (so a bad ``MEMORY_PATH`` or ``GRPC_PORT`` is a clean error), the app's lifespan again."""
        if self._started:
            return
        self._started = True
        await self.shared.start(self._apply_control, self._reload_requested)
        await self._persist_spend()
        if self.embedder is not None:
            await self.embedder.start()
        if self.memory is not None:
            await self.memory.start()
        if self.rag is not None:
            await self.rag.start()
        await self.router.start()
        self.traffic.start(lambda: self.router.deployments)
        if grpc and self.settings.enable_grpc:
            from ailb.control.server import start_grpc

            self.grpc_server, self.grpc_port = await start_grpc(
                self, self.settings.host, self.settings.grpc_port, reuse_port=self.settings.workers > 1
            )

    async def reload(self, force: bool = False, announce: bool = True) -> tuple[bool, str]:
        """Re-read env and config file; swap in a new router atomically or keep the old one on error.

        ``announce``: this process was asked (gRPC ``Reload``, ``SIGHUP``), so it also counts the reload in the
        routes version and asks every process sharing its control state to reload; ``False`` when it was one
        of those asked."""
        async with self._reload_lock:
            try:
                settings = load_settings(self._env, self.settings.config_path or None)
                check_settings(settings)
            except ConfigError as exc:
                log.warning("reload rejected: %s", exc)
                self.metrics.config_reloaded(False)
                return False, str(exc)
            old_router, old_providers = self.router, self.providers
            # The previous secrets stay masked as well: requests in flight still use them.
            self.redactor.set_secrets([*secrets_of(self.settings), *secrets_of(settings)])
            providers = {
                d.name: old_providers[d.name]
                if d.name in old_providers and old_providers[d.name].config == d
                else build_provider(d, self.redactor)
                for d in settings.deployments
            }
            router = Router(settings, providers, observer=self.metrics, tracing=self.tracing)
            router.adopt_state(old_router, keep_overrides=False)
            router.load_traffic_weights(self.control.snapshot().weights)
            await router.start()
            self.settings, self.providers, self.router = settings, providers, router
            self.keys = KeyRing(settings.api_keys, settings.client_keys)
            if self.rag is not None:
                self.rag.allowed = self.keys.collection_limits()
            self.service = ChatService(router, self.memory, self.rag, self.tracing)
            self.embeddings = EmbeddingService(router, self.local_embedder)
            self.metrics.configure_from(settings)
            self.metrics.config_reloaded(True)
            try:
                await self._persist_spend()
            except ConfigError as exc:
                log.error("per-key spend stays in memory: %s", exc)
            shared = await self._announce_reload(force) if announce else ""
            self.reloaded_at = time.time()
            retired = [p for name, p in old_providers.items() if providers.get(name) is not p]
            task = asyncio.create_task(self._retire(old_router, retired))
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
                await self.control.clear()
            await self.control.bump_version()
            await self.control.announce_reload(force)
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
        self.router.load_traffic_weights(snapshot.weights)
        self.rate_limits.replace(snapshot.limits)
        self.routes_version = snapshot.routes_version

    async def _persist_spend(self) -> None:
        """Keep per-key spend in ``SPEND_PATH`` once a key is metered (``ConfigError`` if the file is unusable).
        With Redis, spend lives there (and in Redis's own persistence) instead."""
        limits = self.limits
        if not isinstance(limits, InProcessLimitStore) or limits.persistent:
            return
        if not self.keys.metered or not self.settings.spend_path:
            return
        try:
            await limits.persist_to(SpendJournal(self.settings.spend_path))
        except JournalError as exc:
            raise ConfigError("SPEND_PATH", str(exc)) from None

    async def _retire(self, router: Router, providers: list[Provider]) -> None:
        """Close what the old configuration used once its in-flight requests had time to finish."""
        await router.aclose()
        deadline = time.monotonic() + self.settings.drain_timeout
        while time.monotonic() < deadline and any(d.in_flight for d in router.deployments):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        for provider in providers:
            await provider.aclose()

    def health(self) -> dict[str, Any]:
        routing = self.router.health()
        memory = self.memory.status() if self.memory is not None else "disabled"
        rag = self.rag.status() if self.rag is not None else "disabled"
        shared = self.shared.status()
        status = gateway_status(routing["status"], memory, rag, shared)
        body: dict[str, Any] = {"status": status, "module_id": self.settings.module_id, "version": __version__}
        body["deployments"] = routing["deployments"]
        body["memory"] = memory
        body["rag"] = rag
        body["shared_state"] = shared
        return body

    async def aclose(self) -> None:
        if self.grpc_server is not None:
            from ailb.control.server import stop_grpc

            await stop_grpc(self.grpc_server, min(5.0, self.settings.drain_timeout))
        await self.traffic.aclose()
        await self.router.aclose()
        for task in list(self._retired):
            task.cancel()
        await self.governor.drain()
        await self.shared.aclose()
        if self.memory is not None:
            await self.memory.aclose()
        if self.rag is not None:
            await self.rag.aclose()
        if self.embedder is not None:
            await self.embedder.aclose()
        if self.local_embedder is not None and self.local_embedder is not self.embedder:
            await self.local_embedder.aclose()
        for provider in self.providers.values():
            await provider.aclose()
        await self.tracing.aclose()


def build_gateway(settings: Settings | None = None, env: Mapping[str, str] | None = None) -> Gateway:
    return Gateway(settings if settings is not None else load_settings(env), env)
