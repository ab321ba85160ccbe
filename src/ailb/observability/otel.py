"""Tracing with OpenTelemetry: the one module that imports it, and only when an OTLP endpoint is configured.

Spans follow the OpenTelemetry GenAI semantic conventions (``gen_ai.*``) plus AILB's own ``ailb.*``
attributes; ``ailb.observability.tracing`` draws the tree. The tracer provider is AILB's own (never the global
one, so a library's instrumentation is not exported by accident); spans leave through a batch processor, on
its own thread, over OTLP/HTTP (protobuf) or OTLP/gRPC. Every text put on a span is redacted; prompts and
answers only with ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from functools import lru_cache
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode, format_span_id, format_trace_id
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ailb import __version__
from ailb.errors import AILBError, UpstreamError, UpstreamStatusError
from ailb.observability.context import current_request, set_upstream_trace
from ailb.observability.genai import input_messages, output_messages, request_parameters, usage_attributes
from ailb.observability.tracing import AttributeValue
from ailb.observability.tracing_config import TracingConfig
from ailb.redaction import Redactor
from ailb.routing.streaming import PassedChunks

if TYPE_CHECKING:
    from ailb.contract import Completion, StreamChunk, Usage
    from ailb.routing.router import RouteInfo
    from ailb.settings import DeploymentConfig

_PROPAGATED = {b"traceparent": "traceparent", b"tracestate": "tracestate"}


class OtelTracing:
    enabled = True

    def __init__(self, config: TracingConfig, redactor: Redactor, exporter: SpanExporter | None = None) -> None:
        self.config = config
        self.redactor = redactor
        resource = Resource.create(
            {**config.resource_attributes, "service.name": config.service_name, "service.version": __version__}
        )
        self._provider = TracerProvider(resource=resource, sampler=_sampler(config))
        processor = BatchSpanProcessor(exporter or _exporter(config), schedule_delay_millis=config.schedule_delay_ms)
        self._provider.add_span_processor(processor)
        self._tracer = self._provider.get_tracer("ailb", __version__)
        self._propagator = TraceContextTextMapPropagator()

    def start_request(
        self, method: str, path: str, headers: Iterable[tuple[bytes, bytes]], request_id: str
    ) -> OtelRequestSpan:
        carrier = {_PROPAGATED[name]: value.decode("latin-1") for name, value in headers if name in _PROPAGATED}
        parent = self._propagator.extract(carrier) if carrier else Context()
        span = self._tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path, "ailb.request_id": request_id},
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        return OtelRequestSpan(self, span, token, method)

    def start_attempt(self, deployment: DeploymentConfig, model: str, number: int) -> OtelAttemptSpan:
        operation = "chat"
        request = current_request()
        if request is not None and isinstance(request.span, OtelRequestSpan):
            request.span.attempts = max(request.span.attempts, number)
            operation = request.span.operation_name or operation
        address, port = _server(deployment.base_url)
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": deployment.provider,
            "gen_ai.request.model": model,
            "server.address": address,
            "ailb.deployment": deployment.name,
            "ailb.attempt": number,
        }
        if port:
            attributes["server.port"] = port
        span = self._tracer.start_span(f"{operation} {model}", kind=SpanKind.CLIENT, attributes=attributes)
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=trace.set_span_in_context(span))
        set_upstream_trace(carrier)
        return OtelAttemptSpan(span, self.redactor)

    def span(self, name: str, attributes: Mapping[str, AttributeValue]) -> OtelSpan:
        return OtelSpan(self._tracer, name, attributes, self.redactor)

    async def aclose(self) -> None:
        """Export what is still queued, then stop the exporter."""
        await asyncio.to_thread(self._provider.shutdown)


class OtelRequestSpan:
    """The SERVER span of one request; the HTTP edge ends it (``finish``) and detaches its context. Attributes
    gather in a dict and reach the span once, at the end (the SDK validates and locks on every call)."""

    __slots__ = ("_attributes", "_capturing", "_error", "_method", "_span", "_token", "_tracing", "attempts",
                 "operation_name", "span_id", "trace_id")  # fmt: skip

    def __init__(self, tracing: OtelTracing, span: trace.Span, token: object, method: str) -> None:
        self._tracing = tracing
        self._method = method
        self._span = span
        self._token = token
        self._attributes: dict[str, AttributeValue] = {}
        self._error = ""
        self._capturing = tracing.config.capture_content and span.is_recording()
        self.attempts = 0
        self.operation_name = ""
        context = span.get_span_context()
        self.trace_id = format_trace_id(context.trace_id)
        self.span_id = format_span_id(context.span_id)

    def operation(self, name: str, model: str, body: Mapping[str, Any]) -> None:
        self.operation_name = name
        self._span.update_name(f"{name} {model}")
        self._attributes["gen_ai.operation.name"] = name
        self._attributes["gen_ai.request.model"] = model
        self._attributes.update(request_parameters(body))

    def routed(self, route: RouteInfo) -> None:
        self._attributes.update(
            {
                "gen_ai.provider.name": route.provider,
                "gen_ai.response.model": route.model,
                "ailb.deployment": route.deployment,
                "ailb.strategy": route.strategy,
                "ailb.attempts": route.attempts,
            }
        )

    def completed(self, completion: Completion) -> None:
        body, attributes = completion.body, self._attributes
        attributes.update(usage_attributes(completion.usage))
        if isinstance(body.get("model"), str) and body["model"]:
            attributes["gen_ai.response.model"] = body["model"]
        if isinstance(body.get("id"), str):
            attributes["gen_ai.response.id"] = body["id"]
        choices = body.get("choices")
        choices = choices if isinstance(choices, list) else []
        reasons = [
            c["finish_reason"] for c in choices if isinstance(c, dict) and isinstance(c.get("finish_reason"), str)
        ]
        if reasons:
            attributes["gen_ai.response.finish_reasons"] = reasons
        if self._capturing:
            attributes["gen_ai.output.messages"] = self._json(output_messages(completion.text, reasons))

    def watch(self, chunks: AsyncIterator[StreamChunk]) -> AsyncIterator[StreamChunk]:
        return WatchedChunks(self, chunks, self._capturing)

    def streamed(self, usage: Usage | None, reasons: list[str], parts: list[str] | None) -> None:
        """A watched stream ended: what it said (its text when captured)."""
        self._attributes.update(usage_attributes(usage))
        if reasons:
            self._attributes["gen_ai.response.finish_reasons"] = reasons
        if parts is not None:
            self._attributes["gen_ai.output.messages"] = self._json(output_messages("".join(parts), reasons))

    def stream_failed(self, error: AILBError) -> None:
        self.failed(error)
        self._span.set_status(Status(StatusCode.ERROR, self._error))  # after a 200: the status can't say it

    def failed(self, error: AILBError) -> None:
        self._attributes["error.type"] = error.code or type(error).__name__
        self._error = self._tracing.redactor(error.public_message or error.message)

    def prompt(self, messages: Sequence[Any]) -> None:
        if self._capturing:
            self._attributes["gen_ai.input.messages"] = self._json(input_messages(messages))

    def finish(self, status: int, http_route: str | None) -> None:
        attributes = self._attributes
        attributes["http.response.status_code"] = status
        if http_route:
            attributes["http.route"] = http_route
            if not self.operation_name:
                self._span.update_name(f"{self._method} {http_route}")
        if self.attempts:
            attributes.setdefault("ailb.attempts", self.attempts)
        if status >= 500:
            attributes.setdefault("error.type", str(status))
            self._span.set_status(Status(StatusCode.ERROR, self._error or f"HTTP {status}"))
        self._span.set_attributes(attributes)
        self._span.end()
        otel_context.detach(self._token)  # type: ignore[arg-type]

    def _json(self, value: Any) -> str:
        return orjson.dumps(self._tracing.redactor.tree(value)).decode()


class OtelAttemptSpan:
    """The CLIENT span of one upstream attempt."""

    __slots__ = ("_redactor", "_span")

    def __init__(self, span: trace.Span, redactor: Redactor) -> None:
        self._span = span
        self._redactor = redactor

    def succeeded(self, usage: Usage | None) -> None:
        attributes = usage_attributes(usage)
        attributes["ailb.attempt.outcome"] = "success"
        self._span.set_attributes(attributes)
        self._span.end()

    def failed(self, error: UpstreamError) -> None:
        attributes: dict[str, AttributeValue] = {"ailb.attempt.outcome": "error"}
        if isinstance(error, UpstreamStatusError):
            attributes["http.response.status_code"] = error.upstream_status
            attributes["error.type"] = str(error.upstream_status)
        else:
            attributes["error.type"] = error.code or type(error).__name__
        self._span.set_attributes(attributes)
        self._span.set_status(Status(StatusCode.ERROR, self._redactor(error.public_message or error.message)))
        self._span.end()

    def abandoned(self) -> None:
        self._span.set_attribute("ailb.attempt.outcome", "abandoned")
        self._span.end()


class OtelSpan:
    """An INTERNAL span around a block (memory recall, knowledge-base retrieval)."""

    __slots__ = ("_attributes", "_name", "_redactor", "_span", "_tracer")

    def __init__(
        self, tracer: trace.Tracer, name: str, attributes: Mapping[str, AttributeValue], redactor: Redactor
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._attributes = attributes
        self._redactor = redactor
        self._span: trace.Span = trace.INVALID_SPAN

    def __enter__(self) -> OtelSpan:
        self._span = self._tracer.start_span(self._name, kind=SpanKind.INTERNAL, attributes=self._attributes)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None:
            self._span.set_attribute("error.type", getattr(error, "code", None) or kind.__name__)
            message = error.public_message or error.message if isinstance(error, AILBError) else kind.__name__
            self._span.set_status(Status(StatusCode.ERROR, self._redactor(message)))
        self._span.end()

    def set(self, key: str, value: AttributeValue) -> None:
        self._span.set_attribute(key, value)


def _sampler(config: TracingConfig) -> Sampler:
    kind = config.sampler.removeprefix("parentbased_")
    root: Sampler = {"always_on": ALWAYS_ON, "always_off": ALWAYS_OFF}.get(kind) or TraceIdRatioBased(
        config.sampler_ratio
    )
    return ParentBased(root) if config.sampler.startswith("parentbased_") else root


def _exporter(config: TracingConfig) -> SpanExporter:
    headers = dict(config.headers) or None
    if config.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter

        return GrpcSpanExporter(
            endpoint=config.endpoint, insecure=config.insecure, headers=headers, timeout=config.timeout
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=config.endpoint, headers=headers, timeout=config.timeout)


@lru_cache(maxsize=256)
def _server(base_url: str) -> tuple[str, int | None]:
    """The upstream's host and port (never the user or password a URL may hold)."""
    parts = urlsplit(base_url)
    return parts.hostname or "", parts.port


class WatchedChunks(PassedChunks):
    """``OtelRequestSpan.watch``: a stream's chunks passed through; their usage, finish reasons (and text, when
    captured) go to the span once the stream ends, however it ends."""

    def __init__(self, span: OtelRequestSpan, chunks: AsyncIterator[StreamChunk], capturing: bool) -> None:
        super().__init__(chunks, keep_text=capturing)
        self._request_span = span
        self._reasons: list[str] = []
        self._noted = False

    async def __anext__(self) -> StreamChunk:
        try:
            chunk = await anext(self._chunks)
        except AILBError as exc:
            self._request_span.stream_failed(exc)
            self._note()
            raise
        except BaseException:
            self._note()
            raise
        return self._seen(chunk)

    def _seen(self, chunk: StreamChunk) -> StreamChunk:
        if chunk.finish_reason:
            self._reasons.append(chunk.finish_reason)
        return super()._seen(chunk)

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            self._note()

    def _note(self) -> None:
        if not self._noted:
            self._noted = True
            self._request_span.streamed(self._usage, self._reasons, self._parts)
