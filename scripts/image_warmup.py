"""Run by the Dockerfile's build stage: start ``ailb serve --demo`` once, use it, stop it with SIGTERM.

pip installs without compiling: bytecode for every installed module would add about 100 MB, mostly for
modules AILB never imports (ChromaDB's Kubernetes client alone is half of it). Here Python writes the
bytecode of exactly the modules a running gateway imports, worker processes included, so the image starts
as fast as a fully compiled one. It also proves the image serves a chat (memory and a knowledge base
included) and exits 0 after a drained SIGTERM; any failure fails the build.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

START_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return dict(json.load(response))


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.load(response))


def wait_until_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"ailb serve --demo exited with {server.returncode} during start-up")
        try:
            health = get(base + "/healthz")
            if health.get("memory") == "ok" and health.get("rag") == "ok":
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"ailb serve --demo was not ready within {START_TIMEOUT:g} s")


def main() -> int:
    http_port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "HTTP_PORT": str(http_port),
        "GRPC_PORT": str(grpc_port),
        "LOG_LEVEL": "warning",
    }
    server = subprocess.Popen([sys.executable, "-m", "ailb", "serve", "--demo"], env=env)
    base = f"http://127.0.0.1:{http_port}"
    try:
        wait_until_ready(base, server)
        for _ in range(2):  # the second request recalls the first one's turn
            reply = post(
                base + "/v1/chat/completions",
                {
                    "model": "demo",
                    "messages": [{"role": "user", "content": "What does the demo knowledge base say?"}],
                    "session_id": "warm-up",
                    "rag_collection": "demo_docs",
                },
            )
            if not reply["choices"][0]["message"]["content"]:
                raise SystemExit("the demo model gave an empty answer")
        with urllib.request.urlopen(base + "/metrics", timeout=5) as metrics:
            metrics.read()
        server.send_signal(signal.SIGTERM)
        code = server.wait(60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    if code != 0:
        raise SystemExit(f"ailb serve --demo exited with {code} after SIGTERM (0 expected)")
    print("warm-up: ailb serve --demo answered and stopped cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
