"""`ailb serve --demo` as a real process: the echo model through the real routing, streaming, memory and RAG;
a second AILB on the same ports is refused at once; SIGTERM ends it with status 0 and removes its folder."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from tests.polling import wait_for_health
from tests.ports import free_port

pytestmark = pytest.mark.slow


def _env(http_port: int, grpc_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "OLLAMA_", "AILB_"))}
    return {**env, "HOST": "127.0.0.1", "HTTP_PORT": str(http_port), "GRPC_PORT": str(grpc_port), "LOG_LEVEL": "info"}


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, int, int, subprocess.Popen[str]]]:
    http_port, grpc_port = free_port(), free_port()
    log = (tmp_path / "demo.log").open("w+")
    server = subprocess.Popen(
        [sys.executable, "-m", "ailb", "serve", "--demo"],
        env=_env(http_port, grpc_port), stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{http_port}"
    try:
        wait_for_health(base, server, 60, Path(log.name).read_text, lambda health: health.json()["rag"] == "ok")
        yield base, http_port, grpc_port, server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)  # a killed demo could not remove its folder
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()


def test_the_demo_shows_completions_streaming_memory_and_rag(demo: tuple[str, int, int, subprocess.Popen[str]]) -> None:
    base, _, _, _ = demo
    client = OpenAI(base_url=base + "/v1", api_key="unused")
    assert [m.id for m in client.models.list()] == ["demo", "all-MiniLM-L6-v2"]  # and free offline embeddings
    reply = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "My name is Alice"}], extra_body={"session_id": "u1"}
    )
    assert reply.choices[0].message.content == "Echo from the demo model: My name is Alice"
    pieces = []
    raw = client.chat.completions.with_raw_response.create(
        model="demo",
        messages=[{"role": "user", "content": "What is my name, and how many vacation days carry over?"}],
        extra_body={"session_id": "u1", "rag_collection": "demo_docs"},
        stream=True,
    )
    assert raw.headers["x-ailb-deployment"] == "demo"
    assert raw.headers["x-ailb-memory-turns"] == "1"
    assert raw.headers.get("x-ailb-rag-sources", "").startswith("vacation-policy.md")
    for chunk in raw.parse():
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    text = "".join(pieces)
    assert len(pieces) > 10  # word by word
    assert 'you said "My name is Alice"' in text
    assert "[1] vacation-policy.md" in text


def test_a_second_ailb_on_the_same_ports_fails_at_once(demo: tuple[str, int, int, subprocess.Popen[str]]) -> None:
    _, http_port, grpc_port, _ = demo
    cases = (((free_port(), grpc_port), f"gRPC port {grpc_port}"), ((http_port, 0), f"HTTP port {http_port}"))
    for ports, taken in cases:
        second = subprocess.run(
            [sys.executable, "-m", "ailb", "serve", "--demo"],
            env=_env(*ports), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 1
        assert f"ailb: cannot start: the {taken} on 127.0.0.1 is already in use" in second.stderr
        assert "listening" not in second.stderr  # nothing was started before the check


def test_sigterm_stops_the_demo_cleanly(demo: tuple[str, int, int, subprocess.Popen[str]], tmp_path: Path) -> None:
    _, _, _, server = demo
    server.send_signal(signal.SIGTERM)
    assert server.wait(30) == 0
    log = (tmp_path / "demo.log").read_text()
    folder = re.search(r"memory      embedded ChromaDB in (\S+)/ailb_memory", log)
    assert folder is not None, log
    assert "ailb-demo-" in folder.group(1) and not Path(folder.group(1)).exists()
    assert "deployment  demo (openai, http://127.0.0.1:" in log
