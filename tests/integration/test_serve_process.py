"""`ailb serve` as a real process: SIGTERM stops new connections but lets an in-flight stream finish."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes import OpenAIFake, ThreadedServer
from tests.polling import wait_for_health
from tests.ports import free_port


@pytest.fixture
def slow_fake() -> Iterator[OpenAIFake]:
    fake = OpenAIFake(api_key="sk-serve-test")
    fake.reply = " ".join(f"w{i}" for i in range(30))
    fake.stream_chunk_delay = 0.05
    with ThreadedServer(fake):
        yield fake


def test_sigterm_drains_an_in_flight_stream(slow_fake: OpenAIFake) -> None:
    port = free_port()
    env = {
        **os.environ,
        "OPENAI_API_KEY": "sk-serve-test",
        "OPENAI_BASE_URL": slow_fake.base_url,
        "OPENAI_MODELS": "gpt-4o",
        "ENABLE_MEMORY": "false",
        "ENABLE_GRPC": "false",
        "HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "DRAIN_TIMEOUT": "10",
        "LOG_LEVEL": "warning",
    }
    server = subprocess.Popen([sys.executable, "-m", "ailb", "serve"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base, server, 30)
        events: list[str] = []
        body = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "count"}]}
        with httpx.Client(timeout=20) as client, client.stream("POST", base + "/v1/chat/completions", json=body) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    events.append(line)
                    if len(events) == 3:
                        server.send_signal(signal.SIGTERM)
        assert events[-1] == "data: [DONE]"
        assert len(events) > 10  # the stream went on well past the signal
        with pytest.raises(httpx.TransportError):
            httpx.get(base + "/healthz", timeout=1)
        assert server.wait(15) == 0  # a clean drain is a clean exit, not death by SIGTERM
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_a_failed_start_up_exits_without_waiting_for_the_model(tmp_path: Path) -> None:
    """The embedding model starts loading before MEMORY_PATH is checked; a failed start-up must not wait for it
    (nor start a store worker process only to close it)."""
    not_a_folder = tmp_path / "memory"
    not_a_folder.write_text("a file")
    env = {
        **os.environ,
        "OPENAI_API_KEY": "sk-serve-test",
        "ENABLE_GRPC": "false",
        "MEMORY_PATH": str(not_a_folder),
        "HOST": "127.0.0.1",
        "HTTP_PORT": str(free_port()),
        "LOG_LEVEL": "info",
    }
    done = subprocess.run([sys.executable, "-m", "ailb", "serve"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "MEMORY_PATH" in done.stderr and "not a folder" in done.stderr
    # The model's loader announces itself once torch is imported, seconds after start: a process that exits at
    # once never gets there; one that waits for the loader thread does.
    assert "Loading SentenceTransformer model" not in done.stderr, "the exit waited for the model loader"


ENCODING_AT_EXIT = """
import asyncio, sys
from ailb.cli import exit_process
from ailb.embeddings import native_work
from ailb.embeddings.local import LocalEmbedder

async def start_encoding() -> None:
    embedder = LocalEmbedder()
    await embedder.wait_ready()
    asyncio.ensure_future(embedder.embed([f"text {i} " + "many words in a long passage " * 40 for i in range(400)]))
    while not native_work.under_way():
        await asyncio.sleep(0.001)
    print("encoding", flush=True)

asyncio.run(start_encoding())
exit_process(3)
"""


def test_an_exit_while_the_model_encodes_is_a_clean_exit() -> None:
    """An exit finalizes the interpreter; ONNX Runtime's C++ destructors then run under the lane's thread still inside
    the runtime, and abort the process (SIGABRT). The ``ailb`` command's exit skips finalization while it works."""
    done = subprocess.run([sys.executable, "-c", ENCODING_AT_EXIT], capture_output=True, text=True, timeout=120)
    assert done.stdout == "encoding\n"
    assert "terminate called" not in done.stderr
    assert done.returncode == 3, done.stderr[-2000:]
