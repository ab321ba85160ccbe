"""Runs every README block as printed, in order; meant for a private network namespace (see test_readme.py).

``python -m tests.readme.driver REPOSITORY WORKDIR`` prints one JSON line per block:
``{"block": "README.md:17 (bash, server)", "ok": true, "detail": "..."}``. The environment is the caller's
with the provider variables removed, the virtualenv of this Python first on ``PATH`` (an activated ``.venv``),
a loopback OpenAI fake answering as ``OPENAI_BASE_URL`` with the key ``sk-...``, and ``AILB_DATA_DIR`` in WORKDIR.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.fakes import OpenAIFake, ThreadedServer
from tests.readme.blocks import Block, readme_blocks
from tests.readme.grpcurl_standin import call, grpcurl_calls

README_KEY = "sk-..."  # the key the README prints; the fake accepts exactly it
HEALTH_URL = "http://127.0.0.1:8080/healthz"
SERVER_START_SECONDS = 300
_CLEARED = ("OPENAI_", "ANTHROPIC_", "OLLAMA_", "AILB_", "MEMORY_", "RAG_", "ENABLE_", "CHROMA_", "EMBEDDING_")
_CLEARED_KEYS = {"HOST", "HTTP_PORT", "GRPC_PORT", "MODULE_ID", "ROUTING_STRATEGY", "LOG_LEVEL"}


class BlockFailed(Exception):
    pass


class Runner:
    def __init__(self, repository: Path, workdir: Path, fake_url: str) -> None:
        self.repository = repository
        self.workdir = workdir
        self.servers: dict[str, Block] = {}
        self.current: tuple[str, subprocess.Popen[bytes], Path] | None = None
        venv_bin = str(Path(sys.executable).parent)
        env = {k: v for k, v in os.environ.items() if not k.startswith(_CLEARED) and k not in _CLEARED_KEYS}
        self.env = {
            **env,
            "PATH": venv_bin + os.pathsep + env.get("PATH", ""),
            "VIRTUAL_ENV": str(Path(venv_bin).parent),
            "OPENAI_BASE_URL": fake_url,
            "AILB_DATA_DIR": str(workdir / "data"),
            "HF_HUB_OFFLINE": "1",
        }

    def run(self, block: Block) -> str:
        if block.kind == "server":
            assert block.server is not None
            self.servers[block.server] = block
            return self.start(block)
        if block.kind in ("text", "clone"):
            return "not run here" if block.kind == "text" else "run by the fresh-clone test"
        if block.server is not None:
            self.ensure(block.server)
        if block.kind == "config":
            return self.config(block)
        if block.kind == "grpcurl":
            return self.grpcurl(block)
        return self.execute(block)

    def execute(self, block: Block) -> str:
        if block.language == "python":
            command = [str(Path(sys.executable).parent / "python"), "-c", block.code]
        else:
            command = ["bash", "-eo", "pipefail", "-c", block.code]
        done = subprocess.run(command, env=self.env, cwd=self.repository, capture_output=True, timeout=600)
        output = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
        if done.returncode != 0 or "Traceback" in output or '"error"' in output:
            raise BlockFailed(f"exit status {done.returncode}:\n{output[-3000:]}")
        return output[-1500:]

    def config(self, block: Block) -> str:
        path = self.workdir / f"config-{block.line}.yaml"
        path.write_text(block.code)
        keys = {"TEAM_HR_KEY": "team-hr-key-0001", "TEAM_A_KEY": "team-a-key-0001"}  # named by the examples
        env = {**self.env, "OPENAI_API_KEY": README_KEY, "ANTHROPIC_API_KEY": "sk-ant-...", **keys}
        command = ["ailb", "config", "check", "--config", str(path)]
        done = subprocess.run(command, env=env, cwd=self.repository, capture_output=True, timeout=120)
        if done.returncode != 0:
            raise BlockFailed(done.stderr.decode())
        return done.stderr.decode()[-500:]

    def grpcurl(self, block: Block) -> str:
        if shutil.which("grpcurl"):
            return self.execute(block)
        answers = [call(arguments) for arguments in grpcurl_calls(block.code, self.env, str(self.repository))]
        if not answers or any('"success": false' in answer for answer in answers):
            raise BlockFailed("\n".join(answers))
        return "grpcurl stand-in: " + " | ".join(" ".join(answer.split()) for answer in answers)

    def ensure(self, name: str) -> None:
        if self.current is None or self.current[0] != name:
            self.start(self.servers[name])

    def start(self, block: Block) -> str:
        self.stop()
        assert block.server is not None
        log = self.workdir / f"server-{block.server}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", block.code], env=self.env, cwd=self.repository, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.current = (block.server, process, log)
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BlockFailed(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            health = _health()
            if health is not None and "loading" not in (health.get("memory"), health.get("rag")):
                return f"serving: {health}"
            time.sleep(0.3)
        raise BlockFailed(f"the server did not become ready:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.current is None:
            return
        name, process, log = self.current
        self.current = None
        os.killpg(process.pid, signal.SIGTERM)
        try:
            status = process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise BlockFailed(f"server {name} did not stop on SIGTERM:\n{log.read_text()[-2000:]}") from None
        if status != 0:
            raise BlockFailed(f"server {name} exited with {status} on SIGTERM:\n{log.read_text()[-2000:]}")


def _health() -> dict[str, Any] | None:
    try:
        answer = httpx.get(HEALTH_URL, timeout=2)
    except httpx.TransportError:
        return None
    body: dict[str, Any] = answer.json()
    return body


def main(repository: Path, workdir: Path) -> int:
    fake = OpenAIFake(api_key=README_KEY)
    failures = 0
    with ThreadedServer(fake):
        runner = Runner(repository, workdir, fake.base_url)
        try:
            for block in readme_blocks():
                try:
                    detail, ok = runner.run(block), True
                except (BlockFailed, subprocess.TimeoutExpired, RuntimeError, ValueError) as exc:
                    detail, ok = f"{type(exc).__name__}: {exc}", False
                    failures += 1
                print(json.dumps({"block": str(block), "ok": ok, "detail": detail}), flush=True)
        finally:
            try:
                runner.stop()
            except BlockFailed as exc:
                print(json.dumps({"block": "the last server", "ok": False, "detail": str(exc)}), flush=True)
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1]), Path(sys.argv[2])))
