"""What the observability hooks cost per request: tracing off (the default), the request id, tracing on.

One plain chat request with one upstream attempt calls, in order: the request id from the headers, the
request context, the HTTP edge's tracing check, the route's span calls (operation, routed, prompt, completed),
the attempt's span (start, the transport's trace headers, end) and the ``x-request-id`` header. This replays
exactly those calls in a tight loop, three ways:

- ``hooks off``: the tracing hooks alone with ``NO_TRACING`` (what a gateway without OTEL variables pays for
  tracing);
- ``request id + context``: the request id (a generated one: the client sent none) and the context every
  request gets, tracing or not;
- ``tracing on``: the same calls with OpenTelemetry recording a server and a client span per request (the
  spans go to an exporter that drops them, so no network is measured).

    python -m bench.tracing_hooks            # --requests 200000 --rounds 7
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ailb.contract import Completion, Usage
from ailb.observability.context import (
    REQUEST_ID_HEADER,
    RequestContext,
    enter_request,
    leave_request,
    request_id_from,
    request_span,
    upstream_trace,
)
from ailb.observability.otel import OtelTracing
from ailb.observability.tracing import NO_TRACING, Tracing
from ailb.observability.tracing_config import TracingConfig
from ailb.redaction import Redactor
from ailb.routing.router import RouteInfo
from ailb.settings import DeploymentConfig

HEADERS = [
    (b"host", b"127.0.0.1:8080"),
    (b"accept", b"application/json"),
    (b"content-type", b"application/json"),
    (b"user-agent", b"OpenAI/Python 1.99.0"),
    (b"x-stainless-lang", b"python"),
    (b"authorization", b"Bearer sk-bench"),
    (b"content-length", b"120"),
]
MESSAGES = [{"role": "user", "content": "Say hello."}]
BODY = {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 16}
DEPLOYMENT = DeploymentConfig(name="east", provider="openai", base_url="http://127.0.0.1:9/v1", models=("gpt-4o-mini",))
ROUTE = RouteInfo("east", "openai", "gpt-4o-mini", 1, "load_balanced", 0.01)
USAGE = Usage(prompt_tokens=9, completion_tokens=3)
COMPLETION = Completion(body={"id": "c1", "model": "gpt-4o-mini", "choices": [{"finish_reason": "stop"}]}, usage=USAGE,
                        text="Hello.")  # fmt: skip


class Dropping(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def hooks(tracing: Tracing, edge_traced: bool) -> None:
    """The tracing calls of one request (the context is already set)."""
    raw_headers: list[tuple[bytes, bytes]] = []
    if edge_traced:
        context = RequestContext("0123456789abcdef")
        context.span = tracing.start_request("POST", "/v1/chat/completions", HEADERS, context.request_id)
        token = enter_request(context)
    span = request_span()
    span.operation("chat", "gpt-4o-mini", BODY)
    attempt = tracing.start_attempt(DEPLOYMENT, "gpt-4o-mini", 1)
    upstream_trace()
    attempt.succeeded(USAGE)
    span.routed(ROUTE)
    span.prompt(MESSAGES)
    span.completed(COMPLETION)
    raw_headers.append((REQUEST_ID_HEADER, b"0123456789abcdef"))
    if edge_traced:
        span.finish(200, "/v1/chat/completions")
        leave_request(token)


def hooks_off() -> None:
    hooks(NO_TRACING, False)


def request_context() -> None:
    token = enter_request(RequestContext(request_id_from(HEADERS)))
    leave_request(token)


def measure(work: Callable[[], None], requests: int) -> float:
    """Nanoseconds per call, of CPU time."""
    started = time.process_time_ns()
    for _ in range(requests):
        work()
    return (time.process_time_ns() - started) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    traced = OtelTracing(TracingConfig(endpoint="http://127.0.0.1:9/v1/traces"), Redactor(), exporter=Dropping())

    def tracing_on() -> None:
        hooks(traced, True)

    empty_loop = statistics.median(measure(lambda: None, args.requests) for _ in range(args.rounds))
    results: dict[str, list[float]] = {"hooks off": [], "request id + context": [], "tracing on": []}
    for _ in range(args.rounds):  # rounds alternate, so a disturbance on the machine hits every variant
        results["hooks off"].append(measure(hooks_off, args.requests))
        results["request id + context"].append(measure(request_context, args.requests))
        results["tracing on"].append(measure(tracing_on, args.requests // 10))
    print(f"{args.requests} requests x {args.rounds} rounds; median CPU time per request, the empty loop subtracted")
    for name, samples in results.items():
        print(f"  {name:<22} {statistics.median(samples) - empty_loop:8.0f} ns")


if __name__ == "__main__":
    main()
