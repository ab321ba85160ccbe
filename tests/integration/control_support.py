"""Shared set-up for the control-plane integration tests: OpenAI fakes as blue/green deployments, the
gateway's config file, a gRPC client holding the admin token, and small HTTP helpers."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import grpc
import httpx

from ailb.control.generated import module_service_pb2 as pb
from ailb.control.generated import module_service_pb2_grpc as pb_grpc
from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.threaded import ThreadedServer
from tests.integration.harness import RunningGateway

ADMIN_TOKEN = "control-admin-token-7f3a"
MODEL = "gpt-4o"
ALIAS = "smart"
Fakes = dict[str, ThreadedServer[OpenAIFake]]


def fake_key(name: str) -> str:
    return f"sk-{name}-upstream-key-0001"


@contextmanager
def started_fakes(names: Sequence[str]) -> Iterator[Fakes]:
    with ExitStack() as stack:
        fakes: Fakes = {}
        for name in names:
            fake = OpenAIFake(api_key=fake_key(name), models=[MODEL], name=name)
            fakes[name] = stack.enter_context(ThreadedServer(fake))
        yield fakes


def config_yaml(fakes: Mapping[str, ThreadedServer[OpenAIFake]], versions: Mapping[str, str] | None = None) -> str:
    """Every fake as a deployment of ``gpt-4o`` (version label = its name unless ``versions`` says otherwise)."""
    lines = ["deployments:"]
    for name, fake in fakes.items():
        version = (versions or {}).get(name, name)
        lines += [
            f"  - name: {name}",
            "    provider: openai",
            f"    base_url: {fake.base_url}",
            f"    api_key: {fake_key(name)}",
            f"    models: [{MODEL}]",
            f"    version: {version}",
            "    input_cost_per_1k: 0.001",
            "    output_cost_per_1k: 0.002",
        ]
    lines += ["model_aliases:", f"  {ALIAS}: [{MODEL}]", ""]
    return "\n".join(lines)


def gateway_env(**extra: str) -> dict[str, str]:
    return {
        "HOST": "127.0.0.1",
        "ENABLE_GRPC": "true",
        "GRPC_PORT": "0",
        "MODULE_ID": "ailb-control-test",
        "AILB_ADMIN_TOKEN": ADMIN_TOKEN,
        "ROUTING_STRATEGY": "random",
        "HEALTH_CHECK_INTERVAL": "0",
        **extra,
    }


class Control:
    """A synchronous ModuleService client over a real channel, sending the admin token."""

    def __init__(self, gateway: RunningGateway, token: str | None = ADMIN_TOKEN) -> None:
        port = gateway.gateway.grpc_port
        assert port, "the gateway did not start its gRPC server"
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = pb_grpc.ModuleServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def __getattr__(self, method: str) -> Any:
        rpc = getattr(self.stub, method)
        return lambda request: rpc(request, metadata=self.metadata, timeout=30)

    def close(self) -> None:
        self.channel.close()

    def weights(self, route: str, **weights: int) -> pb.TrafficWeightResponse:
        request = pb.TrafficWeightRequest(
            route_name=route, weights=[pb.TrafficWeight(backend_name=b, weight=w) for b, w in weights.items()]
        )
        response: pb.TrafficWeightResponse = self.SetTrafficWeight(request)
        return response

    def rate_limit(self, route: str, rps: int, burst: int, enabled: bool = True) -> pb.RateLimitResponse:
        config = pb.RateLimitConfig(requests_per_second=rps, burst_size=burst, enabled=enabled)
        response: pb.RateLimitResponse = self.ApplyRateLimit(pb.RateLimitRequest(route_name=route, config=config))
        return response


def chat(http: httpx.Client, gateway: RunningGateway, model: str = MODEL, **body: Any) -> httpx.Response:
    payload = {"model": model, "messages": [{"role": "user", "content": "hello there"}], **body}
    return http.post(gateway.v1 + "/chat/completions", json=payload)


def served_by(http: httpx.Client, gateway: RunningGateway, count: int, model: str = MODEL) -> dict[str, int]:
    """Send ``count`` requests; how many each deployment answered (from the ``x-ailb-deployment`` header)."""
    tally: dict[str, int] = {}
    for _ in range(count):
        response = chat(http, gateway, model)
        assert response.status_code == 200, response.text
        deployment = response.headers["x-ailb-deployment"]
        tally[deployment] = tally.get(deployment, 0) + 1
    return tally


def stream_in_background(gateway: RunningGateway) -> tuple[threading.Thread, list[str]]:
    """Start a streamed chat request on a thread (and a connection) of its own; return once its first chunk has
    arrived, with the thread and what it receives: the ``x-ailb-deployment`` header, then the text as it comes."""
    received: list[str] = []
    first_chunk = threading.Event()

    def read_stream() -> None:
        payload = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        with httpx.Client(timeout=30) as http:
            with http.stream("POST", gateway.v1 + "/chat/completions", json=payload) as response:
                received.append(response.headers["x-ailb-deployment"])
                for text in response.iter_text():
                    first_chunk.set()
                    received.append(text)

    reader = threading.Thread(target=read_stream)
    reader.start()
    assert first_chunk.wait(10), "the stream sent no first chunk"
    return reader, received


def routing_stats(http: httpx.Client, gateway: RunningGateway) -> dict[str, Any]:
    """``GET /api/routing/stats`` with the admin token it needs."""
    response = http.get(gateway.url + "/api/routing/stats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
