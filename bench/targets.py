"""The processes of a benchmark run: the fake upstream and the servers measured against it, each on its own core."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

MODEL = "bench-model"
API_KEY = "sk-bench"  # what the gateways send upstream
# What clients send the gateways; LiteLLM refuses to start without a master key that looks strong.
CLIENT_KEY = "sk-bench-" + hashlib.sha256(b"ailb-bench").hexdigest()
REPO = Path(__file__).resolve().parent.parent
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")


class StartError(RuntimeError):
    """A target that did not come up or did not answer a sanity request correctly."""


@dataclass
class Server:
    """A process started for the run (or none, for the fake called directly) and the URL it serves on."""

    name: str
    base_url: str  # ends in /v1
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def chat_url(self) -> str:
        return self.base_url + "/chat/completions"

    def pids(self) -> set[int]:
        return set() if self.process is None else process_tree(self.process.pid)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # its own session: the server and any workers it forked
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def log_tail(self, lines: int = 5) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """Only what a process needs: no provider keys or AILB settings leak in from the caller's shell."""
    env = {key: os.environ[key] for key in PASSED_ENV if key in os.environ}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def launch(
    name: str, base_url: str, argv: list[str], env: Mapping[str, str], cpus: set[int] | None, logs: Path
) -> Server:
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_pin(cpus),
        )
    return Server(name, base_url, process, log_path)


def _pin(cpus: set[int] | None) -> Callable[[], None] | None:
    if not cpus:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin


def process_tree(root: int) -> set[int]:
    """``root`` and its descendants (granian and LiteLLM fork workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy (every CPU, every process) since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def settle(servers: list[Server], limit: float = 20.0) -> None:
    """Wait until the servers are idle (background work such as memory writes has finished)."""
    pids = set().union(*(s.pids() for s in servers)) if servers else set()
    deadline = time.monotonic() + limit
    before = cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        after = cpu_seconds(pids)
        if after - before < 0.02:
            return
        before = after


def request(
    base_url: str, method: str, path: str, body: bytes | None = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    host_port = base_url.split("//", 1)[1].split("/", 1)[0]
    prefix = "/" + base_url.split("//", 1)[1].partition("/")[2]
    conn = http.client.HTTPConnection(host_port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}"}
        conn.request(method, prefix.rstrip("/") + path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            raise StartError(f"exited with code {server.process.returncode}: {server.log_tail()}")
        try:
            status, _ = request(server.base_url, "GET", "/models", timeout=2.0)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise StartError(f"not ready after {timeout:.0f}s: {server.log_tail()}")


def sanity_check(server: Server, body: dict[str, object], timeout: float = 60.0) -> None:
    """One plain and one streamed request must come back whole, or the target's figures would mean nothing."""
    status, data = request(server.base_url, "POST", "/chat/completions", json.dumps(body).encode(), timeout)
    if status != 200:
        raise StartError(f"plain request answered {status}: {data[:300]!r}")
    content = json.loads(data)["choices"][0]["message"]["content"]
    if "fake upstream" not in content:
        raise StartError(f"plain request answered unexpected content {content!r}")
    stream_body = json.dumps({**body, "stream": True}).encode()
    status, data = request(server.base_url, "POST", "/chat/completions", stream_body, timeout)
    if status != 200 or b"data: [DONE]" not in data or b"Hello" not in data:
        raise StartError(f"streamed request answered {status}: {data[:300]!r}")


def launch_ready(
    name: str, base_url: str, argv: list[str], env: Mapping[str, str], cpus: set[int] | None, logs: Path, timeout: float
) -> Server:
    """Launch a server and wait until it answers; one that does not come up is stopped, not left behind."""
    server = launch(name, base_url, argv, env, cpus, logs)
    try:
        wait_ready(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def start_fake(cpus: set[int] | None, logs: Path, chunk_delay_ms: float) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "bench.fake_upstream", "--port", str(port), "--chunk-delay-ms", str(chunk_delay_ms)]
    return launch_ready("fake", f"http://127.0.0.1:{port}/v1", argv, clean_env({}), cpus, logs, 15)


def start_passthrough(fake: Server, cpus: set[int] | None, logs: Path) -> Server:
    port = free_port()
    upstream = fake.base_url.removesuffix("/v1")
    argv = [sys.executable, "-m", "bench.passthrough", "--port", str(port), "--upstream", upstream]
    return launch_ready("passthrough", f"http://127.0.0.1:{port}/v1", argv, clean_env({}), cpus, logs, 15)


def start_passthrough_asgi(fake: Server, cpus: set[int] | None, logs: Path) -> Server:
    port = free_port()
    upstream = fake.base_url.removesuffix("/v1")
    argv = [sys.executable, "-m", "bench.passthrough_asgi", "--port", str(port), "--upstream", upstream]
    return launch_ready("passthrough-asgi", f"http://127.0.0.1:{port}/v1", argv, clean_env({}), cpus, logs, 15)
