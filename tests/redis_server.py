"""A real ``redis-server`` (Debian's package, installed by ``scripts/dev test``) on a free loopback port, and the
pytest fixtures that start one: ``redis_server`` (one per test session, emptied before each test that asks) and
``own_redis`` (one per test, for tests that stop and restart it)."""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ports import free_port


class RedisServer:
    def __init__(self, workdir: Path, password: str | None = None, persist: bool = False, tls: bool = False) -> None:
        self.workdir = workdir
        self.password = password
        self.tls = tls  # TLS only (``rediss://``), with a self-signed certificate for 127.0.0.1
        self.persist = persist  # save to disk when stopped, and load it when started again
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.workdir / 'cert.pem'}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed: `scripts/dev test` installs it (apt-get install redis-server)"
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "3600 1" if self.persist else "",
                   "--appendonly", "no",
                   "--dir", str(self.workdir), "--daemonize", "no", "--loglevel", "warning"]  # fmt: skip
        if self.password:
            command += ["--requirepass", self.password]
        if self.tls:
            self._certificate()
            cert, key = str(self.workdir / "cert.pem"), str(self.workdir / "key.pem")
            command[1:3] = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", cert, "--tls-key-file", key,
                            "--tls-ca-cert-file", cert, "--tls-auth-clients", "no"]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not self._answers():
            assert self.process.poll() is None, "redis-server exited at start"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
        return self

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): it keeps its connections but answers nothing, like a hung Redis."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def command(self, *words: str) -> bytes:
        """Send one command (inline protocol) and return the raw reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as raw:
            conn = self._tls_context().wrap_socket(raw, server_hostname="127.0.0.1") if self.tls else raw
            if self.password:
                conn.sendall(f"AUTH {self.password}\r\n".encode())
                conn.recv(64)
            conn.sendall((" ".join(words) + "\r\n").encode())
            return conn.recv(65536)

    def _certificate(self) -> None:
        openssl = shutil.which("openssl")
        assert openssl, "openssl is needed to make the test certificate"
        subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-keyout", str(self.workdir / "key.pem"), "-out", str(self.workdir / "cert.pem"),
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)  # fmt: skip

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.workdir / "cert.pem"))

    def _answers(self) -> bool:
        try:
            return self.command("PING").startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False


@pytest.fixture(scope="session")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_server(shared_redis: RedisServer) -> RedisServer:
    """The session's Redis, emptied for this test."""
    assert shared_redis.command("FLUSHALL").startswith(b"+OK")
    return shared_redis


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, which it may stop and start again (same port, its data kept on disk)."""
    server = RedisServer(tmp_path / "redis", persist=True).start()
    yield server
    server.stop()
