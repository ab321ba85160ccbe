"""Metrics of several worker processes as one: the Prometheus client's multiprocess mode.

The parent (``ailb.workers``) gives every worker the same empty folder in ``PROMETHEUS_MULTIPROC_DIR``; the
client library, seeing it at import, keeps each worker's values in memory-mapped files there instead of in
process memory, and ``render_all`` reads every file, so a scrape of any worker reports the sum over all of
them, every time. When a worker exits, ``worker_exited`` drops its live gauges (its counters stay counted).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import MutableMapping

from prometheus_client import CollectorRegistry, generate_latest, values
from prometheus_client import multiprocess as prometheus_multiprocess

ENV = "PROMETHEUS_MULTIPROC_DIR"


def active() -> bool:
    """Whether this process writes its metrics to the shared folder (it is one of several workers)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


def prepare(env: MutableMapping[str, str]) -> tuple[str, bool]:
    """Set ``env[ENV]`` to an empty folder for the workers' metric files: the one already named there
    (emptied of old files), else a new temporary one. Returns it, and whether it was created here."""
    given = env.get(ENV, "")
    if given:
        os.makedirs(given, exist_ok=True)
        for name in os.listdir(given):
            if name.endswith(".db"):
                os.remove(os.path.join(given, name))
        return given, False
    path = tempfile.mkdtemp(prefix="ailb-metrics-")
    env[ENV] = path
    return path, True


def worker_exited(path: str, pid: int) -> None:
    prometheus_multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def remove(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def render_all() -> bytes:
    registry = CollectorRegistry()
    prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    data: bytes = generate_latest(registry)
    return data
