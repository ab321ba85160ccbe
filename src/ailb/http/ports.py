"""What the HTTP edge needs of the running gateway: the ports it declares, and nothing of how it is built.

``RuntimeSource`` is the long-lived holder the app is created with (start-up and shutdown in the lifespan, the
current ``HttpRuntime``); ``HttpRuntime`` is one running configuration, as the routes read it. A route reads
the current runtime once (``runtime_of``) and uses that one for the whole request, so a reload meanwhile does
not change a request halfway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from ailb.dashboard.series import TrafficSeries
    from ailb.embeddings.service import EmbeddingService
    from ailb.governance.governor import Governor
    from ailb.memory.service import MemoryService
    from ailb.observability.metrics import Metrics
    from ailb.observability.tracing import Tracing
    from ailb.rag.service import RagService
    from ailb.redaction import Redactor
    from ailb.routing.ratelimit import RateLimiter
    from ailb.routing.router import Router
    from ailb.service import ChatService
    from ailb.settings import Settings
    from ailb.tenancy import KeyRing


class HttpRuntime(Protocol):
    """One running configuration, as the HTTP routes (and the dashboard) read it."""

    @property
    def settings(self) -> Settings: ...
    @property
    def keys(self) -> KeyRing: ...
    @property
    def router(self) -> Router: ...
    @property
    def service(self) -> ChatService: ...
    @property
    def embeddings(self) -> EmbeddingService: ...
    @property
    def governor(self) -> Governor: ...
    @property
    def rate_limits(self) -> RateLimiter: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def redactor(self) -> Redactor: ...
    @property
    def tracing(self) -> Tracing: ...
    @property
    def memory(self) -> MemoryService | None: ...
    @property
    def rag(self) -> RagService | None: ...
    @property
    def traffic(self) -> TrafficSeries: ...
    @property
    def started_at(self) -> float: ...
    @property
    def loaded_at(self) -> float: ...
    def health(self) -> dict[str, Any]: ...


class RuntimeSource(Protocol):
    """The long-lived holder the app is created with."""

    @property
    def runtime(self) -> HttpRuntime: ...
    async def start(self) -> None: ...
    async def aclose(self) -> None: ...


def runtime_of(request: HTTPConnection) -> HttpRuntime:
    """The configuration running now (the app's ``state.runtimes``, set by ``create_app``)."""
    runtime: HttpRuntime = request.app.state.runtimes.runtime
    return runtime
