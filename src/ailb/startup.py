"""Start-up checks and the start-up report of ``ailb serve``.

Both ports are checked before anything is built, so a second AILB (or any other program) on the same HTTP or
gRPC port stops start-up at once with a message naming the port. The report logs the set-up as resolved:
deployments, models and aliases, absolute store paths, ports and which guards are on, and warns loudly about
a control plane or admin API open to the network.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn
from uvicorn.server import HANDLED_SIGNALS

from ailb.compiled import compiled_modules
from ailb.settings import Settings

if TYPE_CHECKING:
    from ailb.bootstrap import Gateway

log = logging.getLogger("ailb")


class StartupError(Exception):
    """AILB cannot start; the message says why and what to change."""


def check_ports(settings: Settings) -> None:
    """Fail at once when the HTTP or the gRPC port is taken on ``settings.host`` (port 0 picks a free one)."""
    ports = [("HTTP", settings.http_port, "--port or HTTP_PORT")]
    if settings.enable_grpc:
        ports.append(("gRPC", settings.grpc_port, "--grpc-port or GRPC_PORT (ENABLE_GRPC=false turns it off)"))
    if settings.enable_grpc and settings.http_port and settings.http_port == settings.grpc_port:
        raise StartupError(f"the HTTP and gRPC ports are both {settings.http_port}: choose two different ports")
    for what, port, option in ports:
        if port and not _can_bind(settings.host, port):
            raise StartupError(
                f"the {what} port {port} on {settings.host} is already in use (another AILB, or another program, "
                f"listens there): stop it, or choose another port with {option}"
            )


def _can_bind(host: str, port: int) -> bool:
    """Bind like the servers will (address reuse on, port sharing off) and let go at once."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"the listen address {host!r} cannot be resolved: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return True


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def report(gateway: Gateway) -> None:
    """Log the resolved set-up, one line per concern, then the warnings."""
    for line in describe(gateway):
        log.info("%s", line)
    for warning in warnings(gateway.runtime.settings):
        log.warning("%s", warning)


def describe(gateway: Gateway) -> list[str]:
    settings = gateway.runtime.settings
    compiled = compiled_modules()
    build = f"hot path compiled ({len(compiled)} modules)" if compiled else "pure Python"
    lines = [f"AILB {_version()} (module {settings.module_id}, {build})"]
    lines.append(f"  HTTP        http://{_hostport(settings.host, settings.http_port)} (API docs at /docs)")
    grpc = _hostport(settings.host, gateway.grpc_port or settings.grpc_port) if settings.enable_grpc else "off"
    lines.append(f"  gRPC        {grpc}")
    config = Path(settings.config_path).resolve() if settings.config_path else "environment only"
    lines.append(f"  config      {config}")
    lines.append(f"  strategy    {settings.routing_strategy}")
    for d in settings.deployments:
        models = ", ".join(d.models) or ("discovered from /api/tags" if d.kind.discovers_models else "no chat models")
        embedding = f"; embeddings: {', '.join(d.embedding_models)}" if d.embedding_models else ""
        lines.append(f"  deployment  {d.name} ({d.provider}, {d.redacted()['base_url']}): {models}{embedding}")
    if not settings.deployments:
        lines.append("  deployment  none")
    for alias, targets in settings.model_aliases.items():
        lines.append(f"  alias       {alias} -> {', '.join(targets)}")
    lines.append(f"  memory      {_store(settings, settings.memory.enabled, settings.memory.path)}")
    lines.append(f"  RAG         {_store(settings, settings.rag.enabled, settings.rag.path)}")
    if settings.memory.enabled or settings.rag.enabled:
        lines.append(f"  embeddings  {_embeddings(settings)}")
    if settings.local_embeddings:
        lines.append("  /v1/embeddings also serves the packaged all-MiniLM-L6-v2 (ENABLE_LOCAL_EMBEDDINGS)")
    spend = Path(settings.spend_path).resolve() if settings.spend_path else "kept in memory only"
    lines.append(f"  spend       {spend}")
    lines.append(f"  guards      {_guards(settings)}")
    return lines


def warnings(settings: Settings) -> list[str]:
    found = [
        f"{name} is set but unused: the config file lists the deployments and does not refer to ${{{name}}}"
        for name in settings.unused_provider_env
    ]
    if is_loopback(settings.host) or settings.admin_token:
        return found
    open_to = []
    if settings.enable_grpc:
        open_to.append(f"the gRPC control plane (port {settings.grpc_port})")
    if settings.rag.enabled:
        open_to.append("the knowledge-base admin API (/v1/rag)")
    if not open_to:
        return found
    who = "anyone who can reach this address" if not settings.api_keys else "every client key"
    found.append(
        f"!!! {' and '.join(open_to)} on {settings.host} can be used by {who}: no AILB_ADMIN_TOKEN is set. "
        "Set AILB_ADMIN_TOKEN, or listen on 127.0.0.1 (HOST or --host) !!!"
    )
    return found


def _store(settings: Settings, enabled: bool, path: str) -> str:
    if not enabled:
        return "off"
    if settings.chroma_host:
        return f"ChromaDB server {settings.chroma_host}:{settings.chroma_port}"
    return f"embedded ChromaDB in {Path(path).resolve()}"


def _embeddings(settings: Settings) -> str:
    if settings.embedding_backend == "provider":
        return f"{settings.embedding_model} from deployment {settings.embedding_deployment}"
    return f"local {settings.embedding_model} on {settings.embedding_runtime}"


def _guards(settings: Settings) -> str:
    keys = f"{len(settings.api_keys)} client keys" if settings.api_keys else "no client keys (open /v1)"
    admin = "admin token set" if settings.admin_token else "no admin token"
    return f"{keys}; {admin}; request bodies up to {settings.max_request_bytes} bytes"


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _version() -> str:
    from ailb import __version__

    return __version__


class DrainingServer(uvicorn.Server):
    """uvicorn re-raises a SIGTERM or SIGINT once its graceful shutdown is over, so even a clean drain ended
    with status 143; here the signal only starts the drain, and ``ailb serve`` exits 0 when it is done."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
