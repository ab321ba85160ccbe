from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.chroma_server import ChromaServer
from tests.integration.control_support import Control
from tests.integration.harness import RunningGateway
from tests.integration.upstreams import Upstreams, start_upstreams

GatewayFactory = Callable[..., RunningGateway]


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    """The three wire-level fakes (``tests/integration/upstreams.py``), started once per test module."""
    with start_upstreams() as running:
        yield running


@pytest.fixture
def run_gateway(tmp_path: Path) -> Iterator[GatewayFactory]:
    """``run_gateway(env, config_yaml=None)`` starts a real gateway; every one started is stopped after the test."""
    started: list[RunningGateway] = []

    def start(env: dict[str, str], config_yaml: str | None = None) -> RunningGateway:
        gateway = RunningGateway(env, config_yaml, workdir=tmp_path).start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in reversed(started):
        gateway.stop()


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    """A real ``chroma run`` server with its data in the test's temp folder; stopped after the test."""
    server = ChromaServer(tmp_path / "chroma-server")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def control(gateway: RunningGateway) -> Iterator[Control]:
    """A gRPC control-plane client (with the admin token) to the module's ``gateway``; closed after the test."""
    client = Control(gateway)
    yield client
    client.close()
