"""Runs the real AILB app (uvicorn, real sockets) in a background thread for integration tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import uvicorn

from ailb.bootstrap import Gateway
from ailb.http.app import create_app
from ailb.http.server import server_config
from ailb.settings import load_settings


class RunningGateway:
    """The gateway serving HTTP on 127.0.0.1 (and gRPC when ``GRPC_PORT`` is set) in its own thread/loop."""

    def __init__(self, env: Mapping[str, str], config_yaml: str | None = None, workdir: Path | None = None) -> None:
        self.env = dict(env)
        if config_yaml is not None:
            assert workdir is not None, "a config file needs a workdir"
            path = workdir / "ailb.yaml"
            path.write_text(config_yaml)
            self.env["AILB_CONFIG"] = str(path)
        self.env.setdefault("ENABLE_MEMORY", "false")
        self.env.setdefault("ENABLE_GRPC", "false")
        if workdir is not None:
            self.env.setdefault("MEMORY_PATH", str(workdir / "memory"))
            self.env.setdefault("RAG_PATH", str(workdir / "rag"))
        self.gateway = Gateway(load_settings(self.env), self.env)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        settings = self.gateway.runtime.settings
        config = server_config(
            create_app(self.gateway), settings, loop="asyncio", log_level="warning", timeout_graceful_shutdown=5
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="ailb-test-gateway", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            await self.server.serve(sockets=[self._sock])

        asyncio.run(main())

    def start(self) -> RunningGateway:
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the gateway thread died during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError("the gateway did not start within 60 s")
            time.sleep(0.01)
        return self

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def call(self, coro: Any, timeout: float = 30) -> Any:
        """Run ``coro`` on the gateway's own event loop and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def flush_memory(self) -> None:
        """Wait until every turn in the memory write queue is in the store."""
        memory = self.gateway.memory
        assert memory is not None, "memory is not enabled"
        self.call(memory.flush(), timeout=60)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(30)
        self._sock.close()

    def __enter__(self) -> RunningGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
