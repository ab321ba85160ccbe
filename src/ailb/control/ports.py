"""What the gRPC control plane needs of the running gateway: the ports it declares, nothing of how it is built.

``ControlPlane`` is the long-lived holder (the current ``ControlRuntime``, the routes version, reload); each
call reads the current runtime once and acts on that one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ailb.memory.service import MemoryService
    from ailb.observability.metrics import Metrics
    from ailb.rag.service import RagService
    from ailb.routing.ratelimit import RateLimiter
    from ailb.routing.router import Router
    from ailb.settings import Settings
    from ailb.state import ControlState, SharedState
    from ailb.tenancy import KeyRing


class ControlRuntime(Protocol):
    """One running configuration, as the control plane reads it."""

    @property
    def settings(self) -> Settings: ...
    @property
    def keys(self) -> KeyRing: ...
    @property
    def router(self) -> Router: ...
    @property
    def rate_limits(self) -> RateLimiter: ...
    @property
    def control(self) -> ControlState: ...
    @property
    def shared(self) -> SharedState: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def memory(self) -> MemoryService | None: ...
    @property
    def rag(self) -> RagService | None: ...
    @property
    def started_at(self) -> float: ...
    @property
    def loaded_at(self) -> float: ...


class ControlPlane(Protocol):
    """The long-lived holder the gRPC server is started with."""

    @property
    def runtime(self) -> ControlRuntime: ...
    @property
    def routes_version(self) -> int: ...
    async def reload(self, force: bool = False) -> tuple[bool, str]: ...
