"""``ailb serve --workers N``: N processes serving the same HTTP and gRPC ports, as one AILB.

The parent process serves nothing itself. It checks what N processes cannot share (``check_workers``),
reserves the ports, starts the workers (``python -m ailb serve`` with ``AILB_WORKER`` set) and supervises them:

- **Ports.** The parent first binds each port exclusively, so a port already in use — by another AILB, one
  process or many — stops it with a message naming the port; a port of 0 becomes a free one. It then holds
  each port with a socket bound with ``SO_REUSEPORT`` (bound, never listening, so it takes no connections),
  and every worker binds its own listening socket to it with ``SO_REUSEPORT`` too, HTTP and gRPC alike: the
  kernel spreads connections over the workers, a worker takes connections only once it has started, and no
  other program can take the port while a worker restarts.
- **State.** Workers share limits and control-plane state through Redis (``REDIS_URL`` is required), so a
  control call reaching any worker governs all of them and a reload reaches all of them; metrics are summed
  over the workers (``observability/multiprocess.py``).
- **Signals.** ``SIGTERM`` (or ``SIGINT``) is passed to every worker, which drains its requests and streams
  (``DRAIN_TIMEOUT``); the parent exits 0 once they have. ``SIGHUP`` goes to one worker, whose reload is
  announced to the others through the shared state. A worker tells the parent it is ready (one byte on a pipe,
  once its gateway has started and just before it listens). One that dies is started again (after 1 s, doubling
  up to 30 s while it keeps dying before it is ready); one that fails before any worker of the group was ever
  ready stops the whole group with its exit status (a configuration error, a port or store that cannot be used).
  Workers get ``SIGTERM`` if the parent dies (Linux).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from ailb.observability import multiprocess
from ailb.settings import ConfigError, Settings

log = logging.getLogger("ailb.workers")
WORKER_ENV = "AILB_WORKER"  # set by the parent in each worker's environment: the worker's number
READY_ENV = "AILB_WORKER_READY_FD"  # the pipe on which a worker says it is ready
RESTART_FIRST, RESTART_MAX = 1.0, 30.0
POLL_SECONDS = 0.1
PR_SET_PDEATHSIG = 1


def is_worker() -> bool:
    return bool(os.environ.get(WORKER_ENV))


def check_workers(settings: Settings) -> None:
    """Refuse, naming the setting, what several worker processes could not share correctly."""
    count = settings.workers
    if count < 1:
        raise ConfigError("WORKERS", f"must be at least 1, got {count}")
    if count == 1:
        return
    if not settings.redis_url:
        raise ConfigError(
            "WORKERS",
            f"{count} workers need REDIS_URL: rate limits, per-key limits and budgets and the control plane's "
            "traffic weights must be shared by the worker processes (or run one worker)",
        )
    if (settings.memory.enabled or settings.rag.enabled) and not settings.chroma_host:
        raise ConfigError(
            "WORKERS",
            f"{count} workers need CHROMA_HOST (a ChromaDB server, e.g. `chroma run`) for memory and knowledge "
            "bases: an embedded MEMORY_PATH/RAG_PATH folder serves one process; or set ENABLE_MEMORY=false "
            "(and ENABLE_RAG=false)",
        )


def listen_sockets(settings: Settings) -> list[socket.socket] | None:
    """In a worker: its own HTTP listening socket on the port the parent holds; ``None`` in a lone process."""
    if not is_worker():
        return None
    sockets = [_reusable_socket(settings.host, settings.http_port)]
    _tell_parent_ready()
    return sockets


def _tell_parent_ready() -> None:
    descriptor = os.environ.pop(READY_ENV, "")
    if descriptor.isdigit():
        with contextlib.suppress(OSError):
            os.write(int(descriptor), b"1")
            os.close(int(descriptor))


@dataclass
class _Worker:
    number: int
    process: subprocess.Popen[bytes]
    ready_pipe: int  # read end: one byte once the worker is ready, end of file if it dies first
    restarts: int = 0  # times in a row it died before it was ready
    ready: bool = False

    def check_ready(self) -> bool:
        if not self.ready and self.ready_pipe >= 0:
            readable, _, _ = select.select([self.ready_pipe], [], [], 0)
            if readable:
                self.ready = os.read(self.ready_pipe, 1) == b"1"
                os.close(self.ready_pipe)
                self.ready_pipe = -1
        return self.ready

    def close(self) -> None:
        if self.ready_pipe >= 0:
            os.close(self.ready_pipe)
            self.ready_pipe = -1


class Supervisor:
    def __init__(self, settings: Settings, config_path: str | None) -> None:
        check_workers(settings)
        self.settings = settings
        self.config_path = config_path
        self._held: list[socket.socket] = []
        self._workers: list[_Worker] = []
        self._stopping = False
        self._reload = False
        self._ever_ready = False
        self._env = dict(os.environ)
        self._metrics_dir = ""
        self._owns_metrics_dir = False

    def run(self) -> int:
        http_port = self._hold("HTTP_PORT", self.settings.http_port)
        self._env.update(HOST=self.settings.host, HTTP_PORT=str(http_port), WORKERS=str(self.settings.workers))
        if self.settings.enable_grpc:
            self._env["GRPC_PORT"] = str(self._hold("GRPC_PORT", self.settings.grpc_port))
        self._metrics_dir, self._owns_metrics_dir = multiprocess.prepare(self._env)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        log.info("starting %d workers on %s:%d", self.settings.workers, self.settings.host, http_port)
        try:
            self._workers = [self._spawn(number) for number in range(1, self.settings.workers + 1)]
            return self._supervise()
        finally:
            self._stop_all()
            for held in self._held:
                held.close()
            if self._owns_metrics_dir:
                multiprocess.remove(self._metrics_dir)

    # --- signals ---------------------------------------------------------------------------------------------
    def _on_stop(self, signum: int, frame: object) -> None:
        self._stopping = True

    def _on_hup(self, signum: int, frame: object) -> None:
        self._reload = True

    # --- the loop --------------------------------------------------------------------------------------------
    def _supervise(self) -> int:
        while not self._stopping:
            if self._reload:
                self._reload = False
                self._signal_one(signal.SIGHUP)
            for index, worker in enumerate(self._workers):
                if worker.check_ready():
                    self._ever_ready = True
                code = worker.process.poll()
                if code is None:
                    continue
                worker.close()
                multiprocess.worker_exited(self._metrics_dir, worker.process.pid)
                if self._stopping:
                    break
                if not self._ever_ready:
                    log.error("worker %d failed to start (exit status %s); stopping", worker.number, code)
                    return code if code > 0 else 1
                log.error("worker %d exited (status %s); starting it again", worker.number, code)
                self._workers[index] = self._respawn(worker)
            time.sleep(POLL_SECONDS)
        return self._drain()

    def _drain(self) -> int:
        """Pass SIGTERM on and wait for every worker to finish its requests."""
        log.info("stopping: draining %d workers", len(self._workers))
        deadline = time.monotonic() + self.settings.drain_timeout + 15
        self._signal_all(signal.SIGTERM)
        codes = []
        for worker in self._workers:
            try:
                codes.append(worker.process.wait(max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                codes.append(worker.process.wait())
        return 0 if all(code in (0, -signal.SIGTERM) for code in codes) else 1

    def _stop_all(self) -> None:
        for worker in self._workers:
            if worker.process.poll() is None:
                worker.process.terminate()
        for worker in self._workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(self.settings.drain_timeout + 15)
            if worker.process.poll() is None:
                worker.process.kill()
            worker.close()

    # --- workers ---------------------------------------------------------------------------------------------
    def _spawn(self, number: int) -> _Worker:
        command = [sys.executable, "-m", "ailb", "serve"]
        if self.config_path:
            command += ["--config", self.config_path]
        ready_read, ready_write = os.pipe()
        env = {**self._env, WORKER_ENV: str(number), READY_ENV: str(ready_write)}
        try:
            process = subprocess.Popen(command, env=env, pass_fds=(ready_write,), preexec_fn=_die_with_parent)
        except BaseException:
            os.close(ready_read)
            raise
        finally:
            os.close(ready_write)
        return _Worker(number, process, ready_read)

    def _respawn(self, worker: _Worker) -> _Worker:
        restarts = 0 if worker.ready else worker.restarts + 1  # dying before it is ready again and again: back off
        pause = min(RESTART_MAX, RESTART_FIRST * 2 ** min(restarts, 5))
        deadline = time.monotonic() + pause
        while time.monotonic() < deadline and not self._stopping:
            time.sleep(POLL_SECONDS)
        fresh = self._spawn(worker.number)
        fresh.restarts = restarts
        return fresh

    def _signal_all(self, sig: signal.Signals) -> None:
        for worker in self._workers:
            if worker.process.poll() is None:
                worker.process.send_signal(sig)

    def _signal_one(self, sig: signal.Signals) -> None:
        for worker in self._workers:
            if worker.process.poll() is None:
                worker.process.send_signal(sig)
                return

    # --- ports -----------------------------------------------------------------------------------------------
    def _hold(self, setting: str, port: int) -> int:
        """Check ``port`` is free, then keep it for the workers; returns it (a free one for 0)."""
        host = self.settings.host
        if port:
            try:
                with _socket(host) as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind((host, port))
            except OSError as exc:
                raise ConfigError(setting, f"cannot listen on {host}:{port}: {exc.strerror}") from None
        held = _reusable_socket(host, port)
        self._held.append(held)
        return int(held.getsockname()[1])


def _socket(host: str) -> socket.socket:
    return socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)


def _reusable_socket(host: str, port: int) -> socket.socket:
    sock = _socket(host)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _die_with_parent() -> None:
    """In the worker, before it runs: ask Linux to send it SIGTERM when the parent dies."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def supervise(settings: Settings, config_path: str | None) -> int:
    """Run ``settings.workers`` workers until SIGTERM; the exit status for ``ailb serve``."""
    return Supervisor(settings, config_path).run()
