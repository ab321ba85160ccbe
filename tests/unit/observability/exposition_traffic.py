"""One fixed stream of metric events through ``Metrics``, and its exposition with the ``_created`` timestamps
masked: the golden file ``golden_exposition.txt`` holds what it rendered before the per-request path changed.
A deliberate change of the exposition rewrites it: ``python -m tests.unit.observability.exposition_traffic``."""

from __future__ import annotations

import re
import time
from pathlib import Path

from ailb.contract import Usage
from ailb.observability.metrics import Metrics

GOLDEN = Path(__file__).with_name("golden_exposition.txt")
_CREATED = re.compile(r"^(\S+_created(?:\{.*\})?) (\S+)$", re.MULTILINE)


class SteppingClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


def _requests(metrics: Metrics) -> None:
    durations = (0.0, 0.01, 0.025, 0.1, 0.2, 0.7, 3.3, 299.9, 500.0, 1e-9)
    for index, seconds in enumerate(durations):
        metrics.request_started()
        ttft = seconds / 3 if index % 2 else None
        metrics.request_finished("gpt-4o", "blue", 200, seconds, seconds * 0.9, ttft)
    metrics.request_started()
    metrics.request_finished("fast", "green", 200, 0.2, 0.3, 0.05, "responses")  # overhead clamps at 0
    metrics.request_started()
    metrics.request_finished("fast", "green", 503, 1.5, 1.0, None, "messages")
    metrics.request_started()
    metrics.request_finished("made-up", "", 404, 0.001, 0.0, None, "chat")
    metrics.request_started()
    metrics.request_finished("gpt-4o", "elsewhere", 502, 0.3, 0.1, None, "unknown-route")
    metrics.request_started()
    metrics.request_finished("llama3:8b", "blue", 200, 0.4, 0.35, 0.1, "completions")  # discovered when served
    metrics.request_started()
    metrics.request_finished("llama3:8b", "", 429, 0.002, 0.0, None, "chat")
    for route in ("embeddings", "count_tokens"):
        metrics.request_started()
        metrics.request_finished("fast", "green", 200, 0.05, 0.04, None, route)
    metrics.request_started()
    metrics.request_started()  # two left in flight


def _attempts(metrics: Metrics) -> None:
    metrics.attempt_finished("blue", "gpt-4o", "success", 0.5, 0.1, Usage(12, 30), 0.0042)
    metrics.attempt_finished("blue", "gpt-4o", "success", 0.1, None, Usage(7, 3), 0.001)
    metrics.attempt_finished("green", "gpt-4o", "error", 0.2, None, None, 0.0)
    metrics.attempt_finished("green", "fast", "client_error", 0.01, None, None, 0.0)
    metrics.attempt_finished("green", "fast", "weird", 61.0, None, Usage(0, 0), 0.0)
    metrics.attempt_finished("elsewhere", "qwen:7b", "success", 0.3, 0.2, Usage(5, 6), 0.5)
    metrics.retried("green", "gpt-4o")
    metrics.retried("nowhere", "made-up")
    metrics.deployment_up("green", False)
    metrics.deployment_up("elsewhere", False)


def _the_rest(metrics: Metrics) -> None:
    metrics.rate_limited("__global__")
    metrics.rate_limited("gpt-4o")
    metrics.rate_limited("made-up")
    metrics.memory_recalled(0.003)
    metrics.memory_stored(0.02)
    metrics.memory_failed("recall")
    metrics.memory_failed("bogus")
    metrics.memory_dropped_turn()
    metrics.rag_retrieved(0.2)
    metrics.rag_failed("ingest")
    metrics.rag_ingested(12)
    metrics.key_spent("team-a", 0.25)
    metrics.key_spent("team-a", 0.0)
    metrics.key_rejected("team-b", "rpm")
    metrics.key_rejected("team-b", "bogus")
    metrics.shared_state_failed("acquire")
    metrics.shared_state_failed("bogus")
    metrics.config_reloaded(True)
    metrics.config_reloaded(False)


def traffic(metrics: Metrics) -> None:
    """Every kind of event, then a reconfiguration and the same events again (label caches must follow)."""
    metrics.configure(["gpt-4o", "fast"], ["blue", "green"])
    _requests(metrics)
    _attempts(metrics)
    _the_rest(metrics)
    metrics.configure(["gpt-4o", "qwen:7b"], ["blue", "elsewhere"])
    _requests(metrics)
    _attempts(metrics)


def exposition() -> tuple[str, str]:
    """The text exposition (``_created`` values masked, each checked to be a time of this run) and the gRPC
    statistics' snapshot, after ``traffic``."""
    before = time.time()
    metrics = Metrics(clock=SteppingClock(1000.0), wall_clock=lambda: 1_700_000_000.0)
    traffic(metrics)
    text = metrics.render()[0].decode()
    after = time.time()
    for match in _CREATED.finditer(text):
        assert before <= float(match.group(2)) <= after, match.group(0)
    return _CREATED.sub(r"\1 CREATED", text), repr(metrics.snapshot())


if __name__ == "__main__":
    rendered, stats = exposition()
    GOLDEN.write_text(rendered + "# snapshot: " + stats + "\n")
