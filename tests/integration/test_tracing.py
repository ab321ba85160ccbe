"""OpenTelemetry traces end to end: the real gateway exports to a real OTLP receiver in the test, which decodes
the protobuf with ``opentelemetry-proto``; the fake upstreams record the ``traceparent`` they were sent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.fakes import Fault
from tests.integration.conftest import GatewayFactory
from tests.integration.otlp_receiver import OtlpGrpcReceiver, OtlpHttpReceiver, ReceivedSpan
from tests.integration.upstreams import OPENAI_KEY, Upstreams

ALIASES = """
model_aliases:
  smart: [gpt-4o, claude-3-5-sonnet-latest]
"""
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@pytest.fixture
def receiver() -> Iterator[OtlpHttpReceiver]:
    with OtlpHttpReceiver() as running:
        yield running


def traced_env(upstreams: Upstreams, endpoint: str, protocol: str = "http/protobuf", **extra: str) -> dict[str, str]:
    upstreams.reset()
    return {
        **upstreams.env(),
        "ROUTING_STRATEGY": "failover",
        "HEALTH_CHECK_INTERVAL": "0",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        **extra,
    }


def chat(model: str = "smart", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "Say hello"}], **extra}


def by_name(spans: list[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.name == name]


def test_a_failover_is_one_trace_continuing_the_callers(
    run_gateway: GatewayFactory, upstreams: Upstreams, receiver: OtlpHttpReceiver
) -> None:
    gateway = run_gateway(traced_env(upstreams, receiver.url), ALIASES)
    upstreams["openai"].fail_next_status(500, "upstream exploded")
    response = httpx.post(gateway.v1 + "/chat/completions", json=chat(), headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200 and response.headers["x-ailb-attempts"] == "2"

    spans = receiver.whole_trace(TRACE_ID)
    (server,) = [s for s in spans if s.kind == "server"]
    assert server.name == "chat smart"
    assert server.parent_span_id == PARENT_ID  # the caller's trace continues
    assert server.resource["service.name"] == "ailb"
    attributes = server.attributes
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "smart"
    assert attributes["gen_ai.response.model"] == "claude-3-5-sonnet-latest"
    assert attributes["gen_ai.provider.name"] == "anthropic"
    assert attributes["gen_ai.usage.input_tokens"] > 0 and attributes["gen_ai.usage.output_tokens"] > 0
    assert attributes["http.response.status_code"] == 200
    assert (attributes["ailb.deployment"], attributes["ailb.strategy"], attributes["ailb.attempts"]) == (
        "anthropic",
        "failover",
        2,
    )
    assert attributes["ailb.request_id"] == response.headers["x-request-id"]
    assert server.status == "unset"
    assert "gen_ai.input.messages" not in attributes and "gen_ai.output.messages" not in attributes

    failed, answered = sorted((s for s in spans if s.kind == "client"), key=lambda s: s.attributes["ailb.attempt"])
    assert failed.parent_span_id == answered.parent_span_id == server.span_id
    assert (failed.name, failed.status, failed.attributes["ailb.deployment"]) == ("chat gpt-4o", "error", "openai")
    assert failed.attributes["http.response.status_code"] == 500 and failed.attributes["error.type"] == "500"
    assert "openai" in failed.status_message and "upstream exploded" not in failed.status_message
    assert (answered.name, answered.status) == ("chat claude-3-5-sonnet-latest", "unset")
    assert answered.attributes["gen_ai.provider.name"] == "anthropic"
    assert answered.attributes["server.address"] == "127.0.0.1"
    assert answered.attributes["gen_ai.usage.output_tokens"] > 0

    # Each upstream was sent the trace context of its own attempt.
    sent_openai = upstreams.openai.chat_requests[-1].headers["traceparent"]
    sent_anthropic = upstreams.anthropic.chat_requests[-1].headers["traceparent"]
    assert sent_openai == f"00-{TRACE_ID}-{failed.span_id}-01"
    assert sent_anthropic == f"00-{TRACE_ID}-{answered.span_id}-01"


def test_a_stream_records_usage_and_with_capture_on_the_redacted_messages(
    run_gateway: GatewayFactory, upstreams: Upstreams, receiver: OtlpHttpReceiver
) -> None:
    env = traced_env(upstreams, receiver.url, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    gateway = run_gateway(env, ALIASES)
    upstreams["openai"].set_reply("The key is " + OPENAI_KEY)
    client = openai.OpenAI(base_url=gateway.v1, api_key="unused", max_retries=0)
    prompt = f"Repeat my key {OPENAI_KEY}"
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": prompt}], stream=True, max_tokens=50, temperature=0.5
    )
    answer = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert answer == "The key is ****"

    spans = receiver.wait_for(lambda got: any(s.name == "chat gpt-4o" and s.kind == "server" for s in got))
    (server,) = [s for s in spans if s.name == "chat gpt-4o" and s.kind == "server"]
    assert server.parent_span_id == ""  # no traceparent came in: a new trace
    attributes = server.attributes
    assert attributes["gen_ai.request.max_tokens"] == 50 and attributes["gen_ai.request.temperature"] == 0.5
    assert attributes["gen_ai.usage.input_tokens"] > 0 and attributes["gen_ai.usage.output_tokens"] > 0
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert '"content":"Repeat my key ****"' in attributes["gen_ai.input.messages"]
    assert '"content":"The key is ****"' in attributes["gen_ai.output.messages"]
    assert all(OPENAI_KEY not in str(value) for s in spans for value in s.attributes.values())


def test_a_request_no_deployment_could_answer_is_an_error_span(
    run_gateway: GatewayFactory, upstreams: Upstreams, receiver: OtlpHttpReceiver
) -> None:
    gateway = run_gateway(traced_env(upstreams, receiver.url), ALIASES)
    upstreams.openai.fail_always(Fault.status(503))
    try:
        response = httpx.post(
            gateway.v1 + "/chat/completions", json=chat("gpt-4o"), headers={"traceparent": TRACEPARENT}
        )
    finally:
        upstreams.openai.clear_faults()
    assert response.status_code == 502
    spans = receiver.whole_trace(TRACE_ID)
    (server,) = [s for s in spans if s.kind == "server"]
    assert server.status == "error" and server.attributes["http.response.status_code"] == 502
    assert server.attributes["error.type"] == "upstream_error"
    assert server.status_message == response.json()["error"]["message"]
    attempts = [s for s in spans if s.kind == "client"]
    assert attempts and all(s.status == "error" for s in attempts)
    assert server.attributes["ailb.attempts"] == len(attempts)


def test_other_api_routes_get_server_spans_and_health_checks_none(
    run_gateway: GatewayFactory, upstreams: Upstreams, receiver: OtlpHttpReceiver
) -> None:
    gateway = run_gateway(traced_env(upstreams, receiver.url), ALIASES)
    assert httpx.get(gateway.url + "/healthz").status_code == 200
    assert httpx.get(gateway.v1 + "/models", headers={"traceparent": TRACEPARENT}).status_code == 200
    (span,) = receiver.whole_trace(TRACE_ID)
    assert (span.name, span.kind, span.attributes["http.route"]) == ("GET /v1/models", "server", "/v1/models")
    assert not [s for s in receiver.spans if "healthz" in str(s.attributes.get("url.path"))]


def test_traces_go_over_grpc_too(run_gateway: GatewayFactory, upstreams: Upstreams) -> None:
    with OtlpGrpcReceiver() as grpc_receiver:
        gateway = run_gateway(traced_env(upstreams, grpc_receiver.url, "grpc", OTEL_SERVICE_NAME="edge-gw"), ALIASES)
        response = httpx.post(gateway.v1 + "/chat/completions", json=chat(), headers={"traceparent": TRACEPARENT})
        assert response.status_code == 200
        spans = grpc_receiver.whole_trace(TRACE_ID)
        gateway.stop()
    (server,) = [s for s in spans if s.kind == "server"]
    assert server.name == "chat smart" and server.resource["service.name"] == "edge-gw"
    assert by_name(spans, "chat gpt-4o")[0].parent_span_id == server.span_id


def test_without_an_endpoint_the_sdk_is_never_imported() -> None:
    """In a fresh interpreter: a gateway serving a request without OTEL variables imports neither AILB's tracing
    module nor the OpenTelemetry SDK or an exporter (FastAPI itself imports the API package, when installed)."""
    import subprocess
    import sys

    script = (
        "import asyncio, sys\n"
        "from ailb.bootstrap import Gateway\n"
        "from ailb.http.app import create_app\n"
        "from ailb.settings import load_settings\n"
        "import httpx\n"
        "env = {'OLLAMA_BASE_URL': 'http://127.0.0.1:9', 'ENABLE_MEMORY': 'false', 'ENABLE_GRPC': 'false'}\n"
        "app = create_app(Gateway(load_settings(env), env))\n"
        "async def main():\n"
        "    transport = httpx.ASGITransport(app=app)\n"
        "    async with httpx.AsyncClient(transport=transport, base_url='http://t') as client:\n"
        "        r = await client.post('/v1/chat/completions', json={'model': 'x', 'messages': []})\n"
        "        assert r.headers['x-request-id']\n"
        "asyncio.run(main())\n"
        "names = ('opentelemetry.sdk', 'opentelemetry.exporter', 'ailb.observability.otel')\n"
        "print(sorted(m for m in sys.modules if m.startswith(names)))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_memory_recall_and_retrieval_are_child_spans(
    run_gateway: GatewayFactory, upstreams: Upstreams, receiver: OtlpHttpReceiver
) -> None:
    env = traced_env(
        upstreams,
        receiver.url,
        ENABLE_MEMORY="true",
        ENABLE_RAG="true",
        EMBEDDING_BACKEND="provider",
        EMBEDDING_DEPLOYMENT="openai",
        EMBEDDING_MODEL="text-embedding-3-small",
        RAG_MIN_SCORE="-1",
    )
    gateway = run_gateway(env, ALIASES)
    rag = gateway.v1 + "/rag/collections"
    assert httpx.post(rag, json={"name": "handbook"}, timeout=60).status_code == 201
    document = {"documents": [{"id": "leave.md", "text": "Vacation days can be carried over until March."}]}
    assert httpx.post(rag + "/handbook/documents", json=document, timeout=60).status_code == 200
    body = chat("gpt-4o", session_id="user-42", rag_collection="handbook")
    response = httpx.post(gateway.v1 + "/chat/completions", json=body, headers={"traceparent": TRACEPARENT}, timeout=60)
    assert response.status_code == 200 and response.headers["x-ailb-rag-sources"] == "leave.md"

    spans = receiver.whole_trace(TRACE_ID)
    (server,) = [s for s in spans if s.kind == "server"]
    (memory,) = by_name(spans, "search_memory")
    (retrieval,) = by_name(spans, "retrieval")
    assert memory.parent_span_id == retrieval.parent_span_id == server.span_id
    assert memory.kind == retrieval.kind == "internal"
    assert memory.attributes["gen_ai.operation.name"] == "search_memory"
    assert memory.attributes["gen_ai.conversation.id"] == "user-42" and memory.attributes["ailb.memory.turns"] == 0
    assert retrieval.attributes["gen_ai.operation.name"] == "retrieval"
    assert retrieval.attributes["gen_ai.data_source.id"] == "handbook"
    assert retrieval.attributes["ailb.rag.sources"] == 1

    missing_trace = "5" * 32
    body = chat("gpt-4o", rag_collection="nope")
    headers = {"traceparent": f"00-{missing_trace}-{PARENT_ID}-01"}
    assert httpx.post(gateway.v1 + "/chat/completions", json=body, headers=headers, timeout=60).status_code == 404
    failed = receiver.whole_trace(missing_trace)
    (retrieval,) = by_name(failed, "retrieval")
    assert retrieval.status == "error" and retrieval.attributes["error.type"] == "collection_not_found"
    (server,) = [s for s in failed if s.kind == "server"]
    assert server.attributes["http.response.status_code"] == 404 and server.status == "unset"  # a client error


def test_an_unsampled_caller_is_propagated_but_not_recorded(
    run_gateway: GatewayFactory, upstreams: Upstreams, receiver: OtlpHttpReceiver
) -> None:
    gateway = run_gateway(traced_env(upstreams, receiver.url), ALIASES)
    unsampled = f"00-{'1' * 32}-{PARENT_ID}-00"
    response = httpx.post(gateway.v1 + "/chat/completions", json=chat("gpt-4o"), headers={"traceparent": unsampled})
    assert response.status_code == 200
    sent = upstreams.openai.chat_requests[-1].headers["traceparent"]
    assert sent.startswith(f"00-{'1' * 32}-") and sent.endswith("-00") and PARENT_ID not in sent
    httpx.post(gateway.v1 + "/chat/completions", json=chat("gpt-4o"), headers={"traceparent": TRACEPARENT})
    receiver.whole_trace(TRACE_ID)  # the sampled request that came after has been exported...
    assert not [s for s in receiver.spans if s.trace_id == "1" * 32]  # ...and nothing of the unsampled one


def test_json_log_lines_carry_the_trace_id(
    run_gateway: GatewayFactory, upstreams: Upstreams, receiver: OtlpHttpReceiver
) -> None:
    import io
    import json
    import logging

    from ailb.observability.logging import configure_logging

    gateway = run_gateway(traced_env(upstreams, receiver.url), ALIASES)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    logs = io.StringIO()
    configure_logging("info", redactor=gateway.gateway.redactor, json_lines=True, stream=logs)
    try:
        upstreams["openai"].fail_next_status(500, "upstream exploded")
        response = httpx.post(gateway.v1 + "/chat/completions", json=chat(), headers={"traceparent": TRACEPARENT})
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    (server,) = [s for s in receiver.whole_trace(TRACE_ID) if s.kind == "server"]
    entries = [json.loads(line) for line in logs.getvalue().splitlines()]
    (warning,) = [e for e in entries if e["message"].startswith("deployment openai failed")]
    assert warning["request_id"] == response.headers["x-request-id"]
    assert (warning["trace_id"], warning["span_id"]) == (TRACE_ID, server.span_id)
