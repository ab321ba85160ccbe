"""What is measured: each probe is one load-generator run against one target; rounds are pooled."""

from __future__ import annotations

import json
import resource
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench.fake_upstream import shape_tag
from bench.loadgen import percentile
from bench.targets import CLIENT_KEY, MODEL, REPO, Server, busy_seconds, cpu_seconds

MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Say hello to the benchmark."},
]
PLAIN_BODY: dict[str, Any] = {"model": MODEL, "messages": MESSAGES, "max_tokens": 16}
_PROSE = "The quick brown fox jumps over the lazy dog while the benchmark measures the gateway. "
# Issue 13's request: ~2 KB, a system message and three turns.
ISSUE_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant. " + _PROSE * 4},
    {"role": "user", "content": "First question: " + _PROSE * 5},
    {"role": "assistant", "content": "First answer: " + _PROSE * 5},
    {"role": "user", "content": "Second question: " + _PROSE * 5},
]
ISSUE_BODY: dict[str, Any] = {"model": MODEL, "messages": ISSUE_MESSAGES, "max_tokens": 16}
ISSUE_STREAM = shape_tag(25, 0, role_first=False)  # 25 events, no delay
ISSUE_PACED = shape_tag(6, 1, role_first=True)  # a role-only event first, then content, events 1 ms apart
SESSIONS = 50  # short sessions: the whole history fits the memory token budget and is recalled as is
LONG_SESSIONS = 10  # long sessions: long questions soon exceed the budget, so recall searches by similarity
_FILLER = " ".join(f"Detail {k} about the garden, the weather and the harvest." for k in range(28))
# The long sessions are filled past the memory budget first (bench.memory_rag.prefill): recall by similarity.
LONG_SESSION = "bench-memory-session-{n}"
CHAT_QUESTION = "Question {i} in session {n}: which of the vegetables we talked about needs the most water?"


@dataclass(frozen=True)
class Probe:
    key: str
    stream: bool = False
    concurrency: int | None = None
    rate: float | None = None
    session: str = ""  # "", "short" or "long"
    shape: str = ""  # issue 13's request and, when streamed, this stream shape (``fake_upstream.shape_tag``)

    def body(self) -> str:
        if self.shape:
            return json.dumps(dict(ISSUE_BODY, stream=True, user=self.shape) if self.stream else ISSUE_BODY)
        body: dict[str, Any] = dict(PLAIN_BODY, stream=True) if self.stream else dict(PLAIN_BODY)
        if self.session == "short":
            body["messages"] = [{"role": "user", "content": "Remember the number {n}. Which number was it?"}]
            body["session_id"] = "bench-session-{n}"
        elif self.session == "long":
            # {i} restarts at 0 in every run: the run's own tag keeps a later round from hitting the query cache
            question = CHAT_QUESTION.replace("{i}", f"{secrets.token_hex(3)}.{{i}}")
            body["messages"] = [{"role": "user", "content": question}]
            body["session_id"] = LONG_SESSION
        return json.dumps(body)

    @property
    def sessions(self) -> int:
        return {"short": SESSIONS, "long": LONG_SESSIONS}.get(self.session, 0)


@dataclass(frozen=True)
class Rates:
    latency: float  # the fixed rate for the added-latency probes (500 req/s)
    low: float  # a rate LiteLLM can sustain, for the like-for-like comparison with it
    memory: float  # a rate a memory-enabled gateway can sustain on this machine


def probes_for(target: str, rates: Rates) -> list[Probe]:
    throughput = [Probe("tput_plain", concurrency=64), Probe("tput_stream", stream=True, concurrency=64)]
    latency = [Probe("lat_plain", rate=rates.latency), Probe("lat_stream", stream=True, rate=rates.latency)]
    low = [Probe("low_plain", rate=rates.low), Probe("low_stream", stream=True, rate=rates.low)]
    issue = [
        Probe("issue_plain", concurrency=64, shape=ISSUE_STREAM),
        Probe("issue_stream", stream=True, concurrency=64, shape=ISSUE_STREAM),
        Probe("issue_ttft", stream=True, concurrency=1, shape=ISSUE_PACED),
    ]
    memory = [
        Probe("tput_plain", concurrency=64),
        Probe("mem_plain", rate=rates.memory),
        Probe("mem_session", rate=rates.memory, session="short"),
        Probe("mem_long", rate=rates.memory, session="long"),
    ]
    plan = {
        "direct": issue + throughput + latency + low,
        "passthrough-asgi": issue + throughput + latency + low,
        "passthrough": issue + throughput + latency + low,
        "ailb": issue + throughput + latency + low,
        "ailb-router": issue + throughput + latency,
        "ailb-baseline": issue,
        "ailb-router-baseline": issue,
        "ailb-compiled": issue + throughput + latency + low,
        "ailb-router-compiled": issue + throughput + latency,
        "ailb-granian": throughput + latency,
        "ailb-memory": memory,
        "litellm": issue + throughput + low,
    }
    return plan[target]


SLOW_RATE = 100.0  # probes at a fixed rate below this run twice as long, to gather enough samples


@dataclass(frozen=True)
class Durations:
    warmup: float
    seconds: float

    def for_probe(self, probe: Probe) -> float:
        return self.seconds * 2 if probe.rate is not None and probe.rate < SLOW_RATE else self.seconds


def loadgen_argv(server: Server, probe: Probe, durations: Durations, cpu: int | None) -> list[str]:
    """The load generator's command line for one probe against ``server`` (pinned to ``cpu`` when given)."""
    argv = [
        sys.executable, "-m", "bench.loadgen",
        "--url", server.chat_url,
        "--body", probe.body(),
        "--header", f"Authorization: Bearer {CLIENT_KEY}",
        "--warmup", str(durations.warmup),
        "--duration", str(durations.for_probe(probe)),
    ]  # fmt: skip
    if probe.rate is not None:
        argv += ["--rate", str(probe.rate)]
    else:
        argv += ["--concurrency", str(probe.concurrency)]
    if probe.sessions:
        argv += ["--vary", str(probe.sessions)]
    if cpu is not None:
        argv += ["--cpu", str(cpu)]
    return argv


def run_probe(server: Server, probe: Probe, durations: Durations, cpu: int | None, ours: set[int]) -> dict[str, Any]:
    """One load-generator run; also the server's CPU time and how much CPU processes not ours took meanwhile."""
    argv = loadgen_argv(server, probe, durations, cpu)
    limit = durations.warmup + durations.for_probe(probe) + 60
    pids = server.pids()
    before = (cpu_seconds(pids), cpu_seconds(ours), _children_seconds(), busy_seconds(), time.monotonic())
    done = subprocess.run(argv, cwd=REPO, capture_output=True, timeout=limit, check=False)
    after = (cpu_seconds(pids), cpu_seconds(ours), _children_seconds(), busy_seconds(), time.monotonic())
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.decode(errors='replace')[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    server_cpu, our_cpu, loadgen_cpu, busy, wall = (b - a for a, b in zip(before, after, strict=True))
    result["cpu_seconds"] = server_cpu
    result["foreign_share"] = max(0.0, busy - our_cpu - loadgen_cpu) / wall
    return result


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Figures:
    """One probe's rounds pooled: the median rate of the rounds, percentiles over every sample."""

    rps: float
    p50: float
    p99: float
    ttfb_p50: float
    ttfb_p99: float
    first_content_p50: float  # time to the first content token (a streamed answer's first non-empty "content")
    requests: int
    errors: int
    error_detail: str
    cpu_us: float  # the server's CPU time per answered request (its own process tree; median of the rounds)
    foreign_share: float  # CPUs' worth of time other processes on the machine took during the probe (mean)


def answered_per_second(result: dict[str, Any]) -> float:
    """A load-generator run's throughput: the requests it measured over its measured seconds."""
    return float(len(result["latencies_ms"]) / result["seconds"])


def pool(rounds: list[dict[str, Any]]) -> Figures:
    latencies = [x for r in rounds for x in r["latencies_ms"]]
    first_bytes = [x for r in rounds for x in r["first_bytes_ms"]]
    first_contents = [x for r in rounds for x in r.get("first_contents_ms", [])]
    details = [r["error_detail"] for r in rounds if r["error_detail"]]
    return Figures(
        rps=statistics.median(answered_per_second(r) for r in rounds),
        p50=percentile(latencies, 0.50),
        p99=percentile(latencies, 0.99),
        ttfb_p50=percentile(first_bytes, 0.50),
        ttfb_p99=percentile(first_bytes, 0.99),
        first_content_p50=percentile(first_contents, 0.50),
        requests=len(latencies),
        errors=sum(r["errors"] for r in rounds),
        error_detail=details[-1] if details else "",
        cpu_us=statistics.median(r["cpu_seconds"] / max(1, r["answered"]) * 1e6 for r in rounds),
        foreign_share=statistics.fmean(r["foreign_share"] for r in rounds),
    )
