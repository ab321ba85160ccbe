"""The running configuration: one frozen ``Runtime`` built by ``build_runtime``, swapped whole on reload.

A ``Runtime`` is everything a request reads: the per-configuration objects (settings, client keys, providers,
router, chat and embedding services), built anew from each configuration, and references to what outlives a
reload (``Lasting``: metrics, tracing, the redactor, shared state and limits, the stores), the same objects in
every runtime of one process. A request reads the current runtime once, when it starts, and finishes on it even
when a reload swaps in a new one meanwhile (``ailb.bootstrap.Gateway`` holds the current one).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ailb import __version__
from ailb.embeddings.service import EmbeddingService
from ailb.health import gateway_status
from ailb.routing.router import Router
from ailb.service import ChatService
from ailb.tenancy import KeyRing

if TYPE_CHECKING:
    from ailb.dashboard.series import TrafficSeries
    from ailb.embeddings.base import Embedder
    from ailb.governance.governor import Governor
    from ailb.memory.service import MemoryService
    from ailb.observability.metrics import Metrics
    from ailb.observability.tracing import Tracing
    from ailb.providers.base import Provider
    from ailb.rag.service import RagService
    from ailb.redaction import Redactor
    from ailb.routing.ratelimit import RateLimiter
    from ailb.settings import DeploymentConfig, Settings
    from ailb.state import ControlState, SharedState


def build_provider(config: DeploymentConfig, redactor: Redactor | None = None) -> Provider:
    """The adapter for ``config``; ``redactor`` (default: one knowing this deployment's key) scrubs its answers.

    The adapter's module is imported only when a deployment of its kind is built."""
    provider: Provider = config.kind.adapter_class()(config, redactor)
    return provider


@dataclass(frozen=True, slots=True)
class Lasting:
    """What one process keeps from start to stop, whatever reloads happen (tracing and the stores need a
    restart to change)."""

    redactor: Redactor
    metrics: Metrics
    tracing: Tracing
    traffic: TrafficSeries
    shared: SharedState
    governor: Governor
    rate_limits: RateLimiter
    memory: MemoryService | None
    rag: RagService | None
    local_embedder: Embedder | None
    started_at: float


@dataclass(frozen=True, slots=True)
class Runtime:
    """One configuration, running: what every HTTP route and control call reads."""

    settings: Settings
    keys: KeyRing
    providers: Mapping[str, Provider]
    router: Router
    service: ChatService
    embeddings: EmbeddingService
    loaded_at: float
    # From ``Lasting``: the same objects in every runtime of the process.
    redactor: Redactor
    metrics: Metrics
    tracing: Tracing
    traffic: TrafficSeries
    shared: SharedState
    control: ControlState
    governor: Governor
    rate_limits: RateLimiter
    memory: MemoryService | None
    rag: RagService | None
    started_at: float

    def health(self) -> dict[str, Any]:
        """``/healthz``: the overall status, then the deployments', memory's, RAG's and the shared state's."""
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


def build_runtime(
    settings: Settings, lasting: Lasting, providers: Mapping[str, Provider], previous: Router | None = None
) -> Runtime:
    """The runtime of ``settings``. ``providers``: adapters already built, reused for the deployments whose
    configuration did not change. ``previous``: the router running now, whose live state (stats, circuits) the
    new one adopts, and the control state's traffic weights are put in force (a reload); its ``start()`` is the
    caller's."""
    reused = {
        d.name: providers[d.name] if d.name in providers and providers[d.name].config == d
        else build_provider(d, lasting.redactor)
        for d in settings.deployments
    }  # fmt: skip
    router = Router(settings, reused, observer=lasting.metrics, tracing=lasting.tracing)
    if previous is not None:
        router.adopt_state(previous, keep_overrides=False)
        router.load_traffic_weights(lasting.shared.control.snapshot().weights)
    keys = KeyRing(settings.api_keys, settings.client_keys)
    return Runtime(
        settings=settings,
        keys=keys,
        providers=reused,
        router=router,
        service=ChatService(router, lasting.memory, lasting.rag, lasting.tracing, keys.collection_limits()),
        embeddings=EmbeddingService(router, lasting.local_embedder),
        loaded_at=time.time() if previous is not None else lasting.started_at,
        redactor=lasting.redactor,
        metrics=lasting.metrics,
        tracing=lasting.tracing,
        traffic=lasting.traffic,
        shared=lasting.shared,
        control=lasting.shared.control,
        governor=lasting.governor,
        rate_limits=lasting.rate_limits,
        memory=lasting.memory,
        rag=lasting.rag,
        started_at=lasting.started_at,
    )
