"""With several workers (``PROMETHEUS_MULTIPROC_DIR``) every value lives in the shared files: two worker
processes' traffic, read back by a third as a scrape of any worker does, is twice one process's figures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from ailb.observability.metrics import Metrics
from tests.unit.observability.exposition_traffic import traffic

ROOT = Path(__file__).resolve().parents[3]
# The families updated on every request or attempt: plain numbers in one process, the shared files with workers.
PER_REQUEST = (
    "ailb_requests", "ailb_request_duration_seconds", "ailb_time_to_first_token_seconds",
    "ailb_gateway_overhead_seconds", "ailb_upstream_attempts", "ailb_upstream_duration_seconds", "ailb_tokens",
    "ailb_cost_usd", "ailb_retries",
)  # fmt: skip
WORKER = (
    "from ailb.observability import multiprocess\n"
    "from ailb.observability.metrics import Metrics\n"
    "from tests.unit.observability.exposition_traffic import traffic\n"
    "assert multiprocess.active()\n"
    "traffic(Metrics())\n"
)
SCRAPE = "import sys\nfrom ailb.observability.metrics import Metrics\nsys.stdout.buffer.write(Metrics().render()[0])\n"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        if family.name in PER_REQUEST or family.name == "ailb_active_requests"
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def _run(program: str, folder: Path) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_two_workers_traffic_is_summed_in_the_shared_files(tmp_path: Path) -> None:
    one = Metrics()
    traffic(one)
    alone = _samples(one.render()[0].decode())
    assert {name for name, _ in alone} >= {"ailb_requests_total", "ailb_tokens_total", "ailb_retries_total"}
    _run(WORKER, tmp_path)
    _run(WORKER, tmp_path)
    merged = _samples(_run(SCRAPE, tmp_path))
    # Four requests left in flight; the workers have exited, but count until the parent marks them dead.
    assert alone[("ailb_active_requests", frozenset())] == 4
    assert merged == {key: 2 * value for key, value in alone.items()}
