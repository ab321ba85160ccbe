"""The container image, built by `scripts/dev image` and run with a plain `podman run --network host`.

Against a fake OpenAI upstream on loopback: /healthz and the image's own HEALTHCHECK, completions through the
official SDK, memory on the embedded default folder (/app/ailb_memory) that survives into a new container on
the same volume, and SIGTERM: an in-flight stream finishes and the container exits 0. Containers and the
volume made here are removed by id.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from ailb.compiled import HOT_MODULES
from tests.fakes import OpenAIFake, ThreadedServer
from tests.ports import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-image-test"
MODEL = "gpt-4o-mini"
SESSION = "image-user-1"
NAME = re.compile(r"[Mm]y name is (\w+)")


@dataclass
class Engine:
    """The engine `scripts/dev image` used (podman or docker), with the configuration it needs here."""

    name: str
    image_id: str
    env: dict[str, str]
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.name, *args], env=self.env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if check:
            assert done.returncode == 0, f"{self.name} {' '.join(args)}: {done.stderr[-2000:]}"
        return done

    def start(self, volume: str, environment: dict[str, str]) -> str:
        options = [arg for name, value in environment.items() for arg in ("-e", f"{name}={value}")]
        volume_option = ["-v", f"{volume}:/app/ailb_memory"]
        started = self.run("run", "-d", "--network", "host", "--pull=never", *volume_option, *options, self.image_id)
        container = started.stdout.strip().splitlines()[-1]
        self.containers.append(container)
        return container

    def inspect(self, container: str, template: str) -> str:
        return self.run("inspect", "--format", template, container).stdout.strip()

    def logs(self, container: str) -> str:
        done = self.run("logs", container, check=False)
        return done.stdout + done.stderr

    def remove_all(self) -> None:
        for container in self.containers:
            self.run("rm", "-f", container, check=False)
        for volume in self.volumes:
            self.run("volume", "rm", "-f", volume, check=False)


def _can_get_an_engine() -> bool:
    """podman or docker is there, or scripts/dev image can install podman (root, or sudo, on Debian)."""
    if shutil.which("podman") or shutil.which("docker"):
        return True
    return bool(shutil.which("apt-get")) and (os.geteuid() == 0 or bool(shutil.which("sudo")))


def build_image() -> Engine:
    if not _can_get_an_engine():
        pytest.skip("no podman or docker, and podman cannot be installed here (needs apt-get and root)")
    done = subprocess.run(
        ["bash", "scripts/dev", "image"], cwd=ROOT, capture_output=True, text=True, timeout=1500,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, f"scripts/dev image failed:\n{done.stderr[-4000:]}"
    result = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert result["image"] == "localhost/ailb:latest"
    env = dict(os.environ)
    if result["engine"] == "podman":
        env["CONTAINERS_CONF"] = result["containers_conf"]
    return Engine(result["engine"], result["image_id"], env)


def name_aware_model(body: dict[str, Any]) -> str:
    """Says the user's name only if it was in what the gateway sent, i.e. recalled from memory."""
    messages = body["messages"]
    question = str(messages[-1]["content"])
    if "What is my name" in question:
        found = NAME.findall(" ".join(str(m.get("content")) for m in messages[:-1]))
        return f"Your name is {found[-1]}." if found else "I do not know your name."
    told = NAME.search(question)
    return f"Nice to meet you, {told.group(1)}!" if told else "Noted: " + " ".join(f"w{i}" for i in range(30))


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    built = build_image()
    try:
        yield built
    finally:
        built.remove_all()


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIFake]:
    fake = OpenAIFake(api_key=KEY, models=[MODEL])
    fake.responder = name_aware_model
    with ThreadedServer(fake):
        yield fake


@dataclass
class Gateway:
    container: str
    base: str

    @property
    def sdk(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base + "/v1", api_key="unused", max_retries=0)


def start_gateway(engine: Engine, upstream: OpenAIFake, volume: str) -> Gateway:
    http_port, grpc_port = free_port(), free_port()
    container = engine.start(
        volume,
        {
            "OPENAI_API_KEY": KEY,
            "OPENAI_BASE_URL": upstream.base_url,
            "OPENAI_MODELS": MODEL,
            "ENABLE_MEMORY": "true",
            "HOST": "127.0.0.1",
            "HTTP_PORT": str(http_port),
            "GRPC_PORT": str(grpc_port),
            "DRAIN_TIMEOUT": "20",
            # Recall by similarity only (no "newest turns" shortcut, a small budget): the packaged model has
            # to embed the question, and the turns' vectors have to be on the volume.
            "MEMORY_RECENT_TURNS": "0",
            "MEMORY_MAX_TOKENS": "20",
        },
    )
    gateway = Gateway(container, f"http://127.0.0.1:{http_port}")
    deadline = time.monotonic() + 120
    while True:
        try:
            health = httpx.get(gateway.base + "/healthz", timeout=2)
            if health.status_code == 200 and health.json()["memory"] == "ok":  # the model is loaded, offline
                return gateway
        except httpx.TransportError:
            pass
        running = engine.inspect(container, "{{.State.Running}}")
        assert time.monotonic() < deadline and running == "true", engine.logs(container)
        time.sleep(0.3)


def stop_during_stream(engine: Engine, gateway: Gateway, upstream: OpenAIFake) -> list[str]:
    """SIGTERM while a stream is in flight; returns the stream's data events."""
    upstream.stream_chunk_delay = 0.05
    events: list[str] = []
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "Tell me a long story"}]}
    try:
        with httpx.Client(timeout=30) as client, client.stream("POST", gateway.base + "/v1/chat/completions",
                                                               json=body) as response:  # fmt: skip
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(line)
                    if len(events) == 3:
                        engine.run("kill", "--signal", "TERM", gateway.container)
    finally:
        upstream.stream_chunk_delay = 0.0
    return events


def remembered_turns(gateway: Gateway) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        answer = httpx.get(f"{gateway.base}/v1/memory/sessions/{SESSION}", timeout=5)
        turns: list[dict[str, Any]] = answer.json()["data"]
        if len(turns) >= 2 or time.monotonic() > deadline:
            return turns
        time.sleep(0.2)


def test_the_image_serves_remembers_across_containers_and_drains_on_sigterm(
    engine: Engine, upstream: OpenAIFake
) -> None:
    volume = f"ailb-test-{uuid.uuid4().hex[:12]}"
    engine.run("volume", "create", volume)
    engine.volumes.append(volume)

    first = start_gateway(engine, upstream, volume)
    logs = engine.logs(first.container)
    assert "memory      embedded ChromaDB in /app/ailb_memory" in logs
    assert f"hot path compiled ({len(HOT_MODULES)} modules)" in logs  # the Dockerfile's default build
    assert engine.run("exec", first.container, "id", "-u").stdout.strip() == "10001"  # not root
    healthcheck = json.loads(engine.inspect(first.container, "{{json .Config.Healthcheck.Test}}"))
    assert healthcheck[0] == "CMD"
    assert engine.run("exec", first.container, *healthcheck[1:], check=False).returncode == 0

    reply = first.sdk.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "My name is Alice"}], extra_body={"session_id": SESSION}
    )
    assert reply.choices[0].message.content == "Nice to meet you, Alice!"
    stream = first.sdk.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "I walk by the lake every summer"}], stream=True,
        extra_body={"session_id": SESSION},
    )  # fmt: skip
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices).startswith("Noted: w0 w1")
    assert [t["user"] for t in remembered_turns(first)] == ["My name is Alice", "I walk by the lake every summer"]

    events = stop_during_stream(engine, first, upstream)
    assert events[-1] == "data: [DONE]" and len(events) > 10  # the stream went on well past the signal
    assert engine.run("wait", first.container, timeout=60).stdout.strip() == "0"
    assert engine.inspect(first.container, "{{.State.ExitCode}}") == "0"

    second = start_gateway(engine, upstream, volume)
    raw = second.sdk.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "What is my name?"}], extra_body={"session_id": SESSION}
    )
    assert raw.parse().choices[0].message.content == "Your name is Alice."
    assert int(raw.headers["x-ailb-memory-turns"]) >= 1
    engine.run("kill", "--signal", "TERM", second.container)
    assert engine.run("wait", second.container, timeout=60).stdout.strip() == "0"
