"""How each gateway under test is started: AILB (uvicorn, granian, two deployments, compiled, memory on) and LiteLLM's
proxy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ailb.compiled import HOT_MODULES, MYPYC_FLAGS
from bench.targets import API_KEY, CLIENT_KEY, MODEL, REPO, Server, StartError, clean_env, free_port, launch_ready
from bench.targets import request as http_request

LITELLM_HINT = (
    "LiteLLM not installed; install with: python3 -m venv .bench-litellm && "
    ".bench-litellm/bin/pip install 'litellm[proxy]' (then pass --litellm-venv .bench-litellm)"
)


@dataclass(frozen=True)
class Workspace:
    fake: Server
    cpus: set[int] | None
    logs: Path  # also holds config files and memory stores


Starter = Callable[[Workspace], Server]


def ailb_env(fake: Server, port: int, **extra: str) -> dict[str, str]:
    return clean_env(
        {
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_MODELS": MODEL,
            "ENABLE_MEMORY": "false",
            "ENABLE_RAG": "false",
            "ENABLE_GRPC": "false",
            "HOST": "127.0.0.1",
            "HTTP_PORT": str(port),
            "LOG_LEVEL": "warning",
            **extra,
        }
    )


def _ailb_argv() -> list[str]:
    script = Path(sys.executable).parent / "ailb"
    return [str(script), "serve"] if script.exists() else [sys.executable, "-m", "ailb", "serve"]


def _serve_ailb(name: str, ws: Workspace, env: dict[str, str], port: int, timeout: float = 60) -> Server:
    return launch_ready(name, f"http://127.0.0.1:{port}/v1", _ailb_argv(), env, ws.cpus, ws.logs, timeout)


def start_ailb(ws: Workspace) -> Server:
    port = free_port()
    return _serve_ailb("ailb", ws, ailb_env(ws.fake, port), port)


def _baseline_path(name: str, sources: str) -> str:
    if not sources or not (Path(sources) / "ailb" / "__init__.py").is_file():
        raise StartError(f"{name} needs --baseline-src DIR, a folder holding an ailb package")
    return str(Path(sources).resolve())


def _serve_from_path(name: str, ws: Workspace, env: dict[str, str], port: int) -> Server:
    """AILB from the sources ``env``'s PYTHONPATH puts first."""
    argv = [sys.executable, "-m", "ailb", "serve"]
    return launch_ready(name, f"http://127.0.0.1:{port}/v1", argv, env, ws.cpus, ws.logs, 60)


def start_ailb_baseline(ws: Workspace, sources: str) -> Server:
    """AILB from other sources (``--baseline-src``), to compare two commits side by side in one run."""
    pythonpath = _baseline_path("ailb-baseline", sources)
    port = free_port()
    return _serve_from_path("ailb-baseline", ws, ailb_env(ws.fake, port, PYTHONPATH=pythonpath), port)


def start_ailb_router_baseline(ws: Workspace, sources: str) -> Server:
    """``ailb-router`` from the baseline sources, to compare a routing change side by side."""
    pythonpath = _baseline_path("ailb-router-baseline", sources)
    port = free_port()
    env = two_deployments_env(ws, port, "ailb-router-baseline")
    return _serve_from_path("ailb-router-baseline", ws, {**env, "PYTHONPATH": pythonpath}, port)


def start_ailb_compiled(ws: Workspace) -> Server:
    """AILB as a compiled install runs it: these sources with the hot-path modules compiled by mypyc."""
    tree = str(compiled_tree(ws))
    port = free_port()
    return _serve_from_path("ailb-compiled", ws, ailb_env(ws.fake, port, PYTHONPATH=tree), port)


def start_ailb_router_compiled(ws: Workspace) -> Server:
    """``ailb-router`` compiled (see ``start_ailb_compiled``)."""
    tree = str(compiled_tree(ws))
    port = free_port()
    env = two_deployments_env(ws, port, "ailb-router-compiled")
    return _serve_from_path("ailb-router-compiled", ws, {**env, "PYTHONPATH": tree}, port)


def compiled_tree(ws: Workspace) -> Path:
    """These sources with the hot-path modules compiled, made (and checked to import compiled) once per run."""
    tree = ws.logs / "compiled"
    if tree.exists():
        return tree
    try:
        _compile_copy(tree)
    except (RuntimeError, OSError) as exc:
        shutil.rmtree(tree, ignore_errors=True)
        raise StartError(f"could not compile the hot path: {exc}") from exc
    probe = "from ailb.compiled import HOT_MODULES, compiled_modules; print(len(compiled_modules()), len(HOT_MODULES))"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False)
    counts = done.stdout.split()
    if done.returncode != 0 or len(counts) != 2 or counts[0] != counts[1]:
        shutil.rmtree(tree, ignore_errors=True)
        raise StartError(f"the compiled tree does not import compiled: {done.stdout}{done.stderr[-2000:]}")
    return tree


def _compile_copy(dest: Path) -> None:
    """Copy these sources' ailb package into ``dest`` and compile its hot-path modules there as a compiled install
    does (the same modules, the same mypy flags), without a wheel or an install: ``PYTHONPATH=dest`` runs it."""
    shutil.copytree(REPO / "src" / "ailb", dest / "ailb", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    paths = [str(Path(*name.split(".")).with_suffix(".py")) for name in HOT_MODULES]
    done = subprocess.run(
        [sys.executable, "-m", "mypyc", *MYPYC_FLAGS, *paths], cwd=dest, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"mypyc failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
    shutil.rmtree(dest / "build", ignore_errors=True)


def start_ailb_two_deployments(ws: Workspace) -> Server:
    """Two deployments serving the model, so every request goes through a real routing choice."""
    port = free_port()
    return _serve_ailb("ailb-router", ws, two_deployments_env(ws, port, "ailb-router"), port)


def two_deployments_env(ws: Workspace, port: int, name: str) -> dict[str, str]:
    config = ws.logs / f"{name}-deployments.yaml"
    lines = ["deployments:"]
    for deployment in ("fake-a", "fake-b"):
        lines += [
            f"  - name: {deployment}",
            "    provider: openai",
            f"    base_url: {ws.fake.base_url}",
            f"    api_key: {API_KEY}",
            f"    models: [{MODEL}]",
        ]
    config.write_text("\n".join(lines) + "\n")
    env = ailb_env(ws.fake, port, AILB_CONFIG=str(config))
    del env["OPENAI_API_KEY"], env["OPENAI_BASE_URL"], env["OPENAI_MODELS"]
    return env


def start_ailb_memory(ws: Workspace) -> Server:
    port = free_port()
    store = ws.logs / "memory-store"
    env = ailb_env(ws.fake, port, ENABLE_MEMORY="true", MEMORY_PATH=str(store))
    server = _serve_ailb("ailb-memory", ws, env, port, timeout=180)
    try:
        wait_memory_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def wait_memory_ready(server: Server, timeout: float = 120.0) -> None:
    """Until the server's memory reports ``ok``: its embedding model loaded (loading would take CPU from a probe)."""
    deadline = time.monotonic() + timeout
    status = "unknown"
    while time.monotonic() < deadline:
        _, body = http_request(server.base_url.removesuffix("/v1"), "GET", "/healthz")
        status = json.loads(body).get("memory", "unknown")
        if status == "ok":
            return
        time.sleep(0.5)
    raise StartError(f"memory status stayed {status!r}")


def start_ailb_granian(ws: Workspace) -> Server:
    granian = Path(sys.executable).parent / "granian"
    if not granian.exists():
        raise FileNotFoundError("granian is not installed (pip install -e '.[bench]')")
    port = free_port()
    argv = [
        str(granian),
        "--interface", "asgi",
        "--factory", "bench.asgi_app:create",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--runtime-threads", "1",
        "--loop", "uvloop",
        "--no-ws",
        "--log-level", "warning",
    ]  # fmt: skip
    env = ailb_env(ws.fake, port)
    return launch_ready("ailb-granian", f"http://127.0.0.1:{port}/v1", argv, env, ws.cpus, ws.logs, 60)


def litellm_binary(venv: str | None) -> Path | None:
    if not venv:
        return None
    binary = Path(venv) / "bin" / "litellm"
    return binary if binary.exists() else None


def start_litellm(ws: Workspace, venv: str) -> Server:
    binary = litellm_binary(venv)
    if binary is None:
        raise FileNotFoundError(LITELLM_HINT)
    port = free_port()
    config = ws.logs / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {ws.fake.base_url}\n"
        f"      api_key: {API_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    env = clean_env(
        {
            "LITELLM_MASTER_KEY": CLIENT_KEY,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
        }
    )
    env["PATH"] = f"{binary.parent}:{env.get('PATH', '')}"
    argv = [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    return launch_ready("litellm", f"http://127.0.0.1:{port}/v1", argv, env, ws.cpus, ws.logs, 180)
