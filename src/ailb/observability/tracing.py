"""The tracing hooks the request path calls, and their no-op implementation.

With no OTLP endpoint configured the gateway holds ``NO_TRACING``: every hook is a method of a constant object
that returns at once, ``opentelemetry`` is never imported and no exporter runs (``bench/tracing_hooks.py``
measures what the hooks cost then). With an endpoint, ``build_tracing`` imports ``ailb.observability.otel``, the
one module that knows OpenTelemetry.

The spans of one chat request::

    chat {model}                 SERVER, started and ended by the HTTP edge (``http/app.py``), named and
    ├── search_memory            filled in by the route; continues an incoming W3C ``traceparent``
    ├── retrieval                INTERNAL, around memory recall and knowledge-base retrieval (``service.py``)
    ├── chat {upstream model}    CLIENT, one per upstream attempt (``routing/attempts.py``); a failed attempt
    └── chat {upstream model}    has error status, and its ``traceparent`` goes upstream (``providers/transport.py``)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from ailb.observability.tracing_config import TracingConfig

if TYPE_CHECKING:
    from ailb.contract import Completion, StreamChunk, Usage
    from ailb.errors import AILBError, UpstreamError
    from ailb.redaction import Redactor
    from ailb.routing.router import RouteInfo
    from ailb.settings import DeploymentConfig

AttributeValue = str | bool | int | float | Sequence[str]


class Span(Protocol):
    """An internal span used as a context manager; an exception leaving the block marks it failed."""

    def __enter__(self) -> Span: ...

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def set(self, key: str, value: AttributeValue) -> None: ...


class AttemptSpan(Protocol):
    """One upstream attempt; exactly one of the three methods ends it."""

    def succeeded(self, usage: Usage | None) -> None: ...

    def failed(self, error: UpstreamError) -> None: ...

    def abandoned(self) -> None: ...


class RequestSpan(Protocol):
    """The server span of one HTTP request. ``trace_id`` and ``span_id`` are ``""`` when it is not traced."""

    trace_id: str
    span_id: str

    def operation(self, name: str, model: str, body: Mapping[str, Any]) -> None:
        """The GenAI operation (``chat``, ``embeddings``, ``text_completion``, ...) and the model asked for."""

    def routed(self, route: RouteInfo) -> None: ...

    def completed(self, completion: Completion) -> None: ...

    def watch(self, chunks: AsyncIterator[StreamChunk]) -> AsyncIterator[StreamChunk]:
        """``chunks`` as they are, noting usage, finish reasons (and text, when captured) on the way."""

    def failed(self, error: AILBError) -> None: ...

    def prompt(self, messages: Sequence[Any]) -> None:
        """The messages as sent upstream: recorded only when message content capture is on (like the answer,
        which ``completed`` and ``watch`` record then)."""

    def finish(self, status: int, http_route: str | None) -> None:
        """The response status is known: end the span (called by the HTTP edge only)."""


class Tracing(Protocol):
    enabled: bool

    def start_request(
        self, method: str, path: str, headers: Iterable[tuple[bytes, bytes]], request_id: str
    ) -> RequestSpan: ...

    def start_attempt(self, deployment: DeploymentConfig, model: str, number: int) -> AttemptSpan: ...

    def span(self, name: str, attributes: Mapping[str, AttributeValue]) -> Span: ...

    async def aclose(self) -> None: ...


class _NoSpan:
    """Every span kind at once, doing nothing."""

    __slots__ = ()
    trace_id = ""
    span_id = ""

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set(self, key: str, value: AttributeValue) -> None:
        return None

    def succeeded(self, usage: Usage | None) -> None:
        return None

    def abandoned(self) -> None:
        return None

    def operation(self, name: str, model: str, body: Mapping[str, Any]) -> None:
        return None

    def routed(self, route: RouteInfo) -> None:
        return None

    def completed(self, completion: Completion) -> None:
        return None

    def watch(self, chunks: AsyncIterator[StreamChunk]) -> AsyncIterator[StreamChunk]:
        return chunks

    def failed(self, error: AILBError) -> None:
        return None

    def prompt(self, messages: Sequence[Any]) -> None:
        return None

    def finish(self, status: int, http_route: str | None) -> None:
        return None


NO_SPAN = _NoSpan()


class NoTracing:
    """Tracing off: constant answers, nothing recorded."""

    enabled = False

    def start_request(
        self, method: str, path: str, headers: Iterable[tuple[bytes, bytes]], request_id: str
    ) -> RequestSpan:
        return NO_SPAN

    def start_attempt(self, deployment: DeploymentConfig, model: str, number: int) -> AttemptSpan:
        return NO_SPAN

    def span(self, name: str, attributes: Mapping[str, AttributeValue]) -> Span:
        return NO_SPAN

    async def aclose(self) -> None:
        return None


NO_TRACING = NoTracing()


def build_tracing(config: TracingConfig, redactor: Redactor) -> Tracing:
    """``NO_TRACING`` unless an OTLP endpoint is configured; only then is opentelemetry imported."""
    if not config.enabled:
        return NO_TRACING
    from ailb.observability.otel import OtelTracing

    return OtelTracing(config, redactor)
