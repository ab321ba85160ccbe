"""Traces of the other API surfaces: each request's server span names its operation and model and who answered,
with the attempts as its children, exported to a real OTLP receiver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.otlp_receiver import OtlpHttpReceiver
from tests.integration.surfaces_support import EMBEDDING_MODELS, MODELS, surface_gateway

TRACE = "4bf92f3577b34da6a3ce929d0e0e47{:02d}"
HI: Any = [{"role": "user", "content": "hi"}]
REQUESTS = [
    ("/v1/responses", {"model": MODELS["anthropic"], "input": "hi", "max_output_tokens": 20}, "chat", "anthropic"),
    ("/v1/messages", {"model": MODELS["ollama"], "max_tokens": 20, "messages": HI}, "chat", "ollama"),
    ("/v1/messages", {"model": MODELS["anthropic"], "max_tokens": 20, "messages": HI, "stream": True}, "chat",
     "anthropic"),
    ("/v1/completions", {"model": MODELS["openai"], "prompt": "hi"}, "text_completion", "openai"),
    ("/v1/embeddings", {"model": EMBEDDING_MODELS["ollama"], "input": "hi"}, "embeddings", "ollama"),
]  # fmt: skip


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OtlpHttpReceiver, str]]:
    with OtlpHttpReceiver() as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "50"}
        with surface_gateway(tmp_path_factory.mktemp("tracing"), **env) as (_upstreams, gateway):
            yield receiver, gateway.url


@pytest.mark.parametrize(("number", "request_"), list(enumerate(REQUESTS)))
def test_every_surface_is_a_traced_operation(
    traced: tuple[OtlpHttpReceiver, str], number: int, request_: tuple[str, dict[str, Any], str, str]
) -> None:
    receiver, url = traced
    path, body, operation, provider = request_
    trace_id = TRACE.format(number)
    response = httpx.post(url + path, json=body, headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    assert response.status_code == 200
    spans = receiver.whole_trace(trace_id)
    (server,) = [s for s in spans if s.kind == "server"]
    assert server.name == f"{operation} {body['model']}" and server.attributes["http.route"] == path
    assert server.attributes["gen_ai.operation.name"] == operation
    assert (server.attributes["gen_ai.provider.name"], server.attributes["ailb.deployment"]) == (provider, provider)
    (attempt,) = [s for s in spans if s.kind == "client"]
    assert attempt.parent_span_id == server.span_id and attempt.name.startswith(operation)
