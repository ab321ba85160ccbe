"""``ailb serve --workers 2`` as a real process tree on one Redis: both workers serve the same HTTP and gRPC
ports, ``/metrics`` counts every request on every scrape, a weight pushed over gRPC and a SIGHUP reload reach
every worker, SIGTERM drains them all and exits 0; what workers cannot share is refused with a clear message."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.control_support import ADMIN_TOKEN, MODEL, Fakes, config_yaml, started_fakes
from tests.integration.fleet_support import AilbProcess, metric_total, poll
from tests.ports import free_port
from tests.redis_server import RedisServer

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FRESH_LOOKS = 40  # requests on connections of their own: each reaches either worker (2^-39: never only one)


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    with started_fakes(["blue", "green"]) as started:
        yield started


@pytest.fixture
def workers(tmp_path: Path, fakes: Fakes, redis_server: RedisServer) -> Iterator[AilbProcess]:
    config = tmp_path / "ailb.yaml"
    config.write_text(config_yaml(fakes))
    parent = AilbProcess(tmp_path, {"REDIS_URL": redis_server.url, "AILB_CONFIG": str(config)}, ["--workers", "2"])
    parent.start()
    yield parent
    parent.stop()


def every_worker(parent: AilbProcess, path: str) -> list[httpx.Response]:
    return [parent.get(path, headers=ADMIN) for _ in range(FRESH_LOOKS)]


def test_two_workers_share_the_ports_and_sum_their_metrics(workers: AilbProcess) -> None:
    for _ in range(30):
        assert workers.chat().status_code == 200  # each on a new connection
    stats = every_worker(workers, "/api/routing/stats")
    served = {sum(d["requests"] for d in r.json()["deployments"].values()) for r in stats}
    # each worker served some and its own stats show its share; an even split shows one figure, 15, from both
    assert served == {15} or (len(served) == 2 and sum(served) == 30 and 0 not in served), served
    for scrape in every_worker(workers, "/metrics")[:10]:  # and every scrape, whichever worker answers, all
        assert metric_total(scrape.text, "ailb_requests_total", status="200") == 30
        assert metric_total(scrape.text, "ailb_upstream_attempts_total", outcome="success") == 30


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def test_a_worker_that_dies_is_started_again(workers: AilbProcess) -> None:
    assert workers.process is not None
    first = children(workers.process.pid)
    assert len(first) == 2
    for _ in range(10):
        assert workers.chat().status_code == 200
    os.kill(min(first), signal.SIGKILL)
    poll(lambda: children(workers.process.pid) if workers.process else set(),
         lambda now: len(now) == 2 and now != first, 30, "a new worker")  # fmt: skip
    poll(lambda: [workers.get("/healthz").status_code for _ in range(FRESH_LOOKS)], lambda codes: codes ==
         [200] * FRESH_LOOKS, 30, "both workers serving")  # fmt: skip
    for _ in range(10):
        assert workers.chat().status_code == 200
    # the dead worker's requests stay counted
    assert metric_total(workers.get("/metrics").text, "ailb_requests_total", status="200") == 20


def test_a_weight_and_a_reload_reach_every_worker(workers: AilbProcess, tmp_path: Path, fakes: Fakes) -> None:
    with workers.control() as control:
        assert control.weights(MODEL, blue=0, green=100).success  # reaches one worker
    poll(lambda: {str(r.json()["traffic_weights"]) for r in every_worker(workers, "/api/routing/stats")},
         lambda seen: seen == {str({MODEL: {"blue": 0, "green": 100}})}, 10, "the weights on every worker")
    assert {workers.chat().headers["x-ailb-deployment"] for _ in range(20)} == {"green"}

    (tmp_path / "ailb.yaml").write_text(config_yaml(fakes) + "  fresh: [gpt-4o]\n")  # a new alias
    workers.signal(signal.SIGHUP)
    poll(lambda: ["fresh" in r.text for r in every_worker(workers, "/v1/models")], all, 20, "reloaded everywhere")
    versions = set()
    for _ in range(10):
        with workers.control() as control:  # a channel of its own: either worker
            versions.add(control.routes().version)
    assert versions == {2}  # one reload, counted once
    assert {workers.chat().headers["x-ailb-deployment"] for _ in range(10)} == {"green"}  # weights kept


def test_sigterm_drains_every_worker_and_exits_0(tmp_path: Path, fakes: Fakes, redis_server: RedisServer) -> None:
    config = tmp_path / "ailb.yaml"
    config.write_text(config_yaml(fakes))
    parent = AilbProcess(tmp_path, {"REDIS_URL": redis_server.url, "AILB_CONFIG": str(config)}, ["--workers", "2"])
    parent.start()
    fakes["blue"].server.latency = fakes["green"].server.latency = 1.0
    with httpx.Client(timeout=30) as client:
        answers: list[int] = []
        threads = [threading.Thread(target=lambda: answers.append(parent.chat().status_code)) for _ in range(6)]
        for thread in threads:
            thread.start()
        poll(lambda: metric_total(client.get(parent.url + "/metrics").text, "ailb_active_requests"),
             lambda active: active >= 6, 10, "six requests in flight")  # fmt: skip
        assert parent.stop() == 0
        for thread in threads:
            thread.join(30)
    assert answers == [200] * 6  # every request in flight was answered before the workers exited
    with pytest.raises(httpx.TransportError):
        httpx.get(parent.url + "/healthz", timeout=2)


def run_serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "HOST": "127.0.0.1", "OPENAI_API_KEY": "sk-x", "HTTP_PORT": str(free_port()),
                   "GRPC_PORT": str(free_port()), **env}  # fmt: skip
    command = [sys.executable, "-m", "ailb", "serve", *args]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60, cwd=tmp_path)


def test_workers_without_redis_are_refused_naming_it(tmp_path: Path) -> None:
    result = run_serve(tmp_path, "--workers", "2", ENABLE_MEMORY="false")
    assert result.returncode == 2 and "REDIS_URL" in result.stderr


def test_workers_with_an_embedded_memory_folder_are_refused(tmp_path: Path, redis_server: RedisServer) -> None:
    result = run_serve(tmp_path, REDIS_URL=redis_server.url, WORKERS="2")
    assert result.returncode == 2 and "CHROMA_HOST" in result.stderr and "ENABLE_MEMORY=false" in result.stderr


def test_workers_on_a_port_in_use_are_refused_naming_it(tmp_path: Path, redis_server: RedisServer) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run_serve(
            tmp_path, "--workers", "2", REDIS_URL=redis_server.url, ENABLE_MEMORY="false", HTTP_PORT=port
        )
    assert result.returncode != 0 and "HTTP_PORT" in result.stderr and port in result.stderr
