"""Real ``ailb serve`` processes for the fleet tests: HTTP and gRPC on free loopback ports, stopped with SIGTERM,
their log in a file the failure message quotes; and small polling helpers (no fixed sleeps)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
import httpx

from ailb.control.generated import module_service_pb2 as pb
from ailb.control.generated import module_service_pb2_grpc as pb_grpc
from tests.integration.control_support import ADMIN_TOKEN
from tests.polling import wait_for_health
from tests.ports import free_port

T = TypeVar("T")
START_SECONDS = 60.0


class AilbProcess:
    def __init__(self, workdir: Path, env: Mapping[str, str], args: Sequence[str] = ()) -> None:
        self.http_port, self.grpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.args = list(args)
        self.log_path = workdir / f"ailb-{self.http_port}.log"
        self.env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "HTTP_PORT": str(self.http_port),
            "GRPC_PORT": str(self.grpc_port),
            "ENABLE_MEMORY": "false",
            "HEALTH_CHECK_INTERVAL": "0",
            "LOG_LEVEL": "info",
            "DRAIN_TIMEOUT": "10",
            "AILB_ADMIN_TOKEN": ADMIN_TOKEN,
            "SPEND_PATH": "none",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> AilbProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ailb", "serve", *self.args], env=self.env, stdout=log, stderr=log
        )
        wait_for_health(
            self.url, self.process, START_SECONDS, self.log, lambda answer: answer.status_code in (200, 503)
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self) -> int:
        """SIGTERM, and the exit status once it has drained."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.process = None
        return code

    def control(self) -> Control:
        return Control(self.grpc_port)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """A GET on a connection of its own (with several workers, each may reach another worker)."""
        return httpx.get(self.url + path, timeout=10, **kwargs)

    def chat(self, model: str = "gpt-4o", key: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        body = {"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5}
        return httpx.post(self.url + "/v1/chat/completions", json=body, headers=headers, timeout=30)


class Control:
    """A ModuleService client on a channel of its own, sending the admin token."""

    def __init__(self, port: int) -> None:
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = pb_grpc.ModuleServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {ADMIN_TOKEN}"),)

    def __enter__(self) -> Control:
        return self

    def __exit__(self, *exc: object) -> None:
        self.channel.close()

    def call(self, method: str, request: Any) -> Any:
        return getattr(self.stub, method)(request, metadata=self.metadata, timeout=20)

    def weights(self, route: str, **weights: int) -> Any:
        request = pb.TrafficWeightRequest(
            route_name=route, weights=[pb.TrafficWeight(backend_name=b, weight=w) for b, w in weights.items()]
        )
        return self.call("SetTrafficWeight", request)

    def rate_limit(self, route: str, rps: int, burst: int, enabled: bool = True) -> Any:
        config = pb.RateLimitConfig(requests_per_second=rps, burst_size=burst, enabled=enabled)
        return self.call("ApplyRateLimit", pb.RateLimitRequest(route_name=route, config=config))

    def routes(self) -> Any:
        return self.call("GetRoutes", pb.RoutesRequest())

    def status(self) -> Any:
        return self.call("GetStatus", pb.StatusRequest())


def poll(read: Callable[[], T], accept: Callable[[T], bool], seconds: float, what: str) -> T:
    """Read until ``accept`` holds; fails naming ``what`` and the last value after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if accept(value):
            return value
        assert time.monotonic() < deadline, f"{what} not reached within {seconds} s; last: {value!r}"
        time.sleep(0.02)


def metric_total(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` (e.g. ``ailb_requests_total``) whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        sample, _, value = line.rpartition(" ")
        if all(f'{key}="{label}"' in sample for key, label in labels.items()):
            total += float(value)
    return total
