"""What is measured: each probe is one load-generator run against one target; rounds are pooled."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from bench.loadgen import percentile
from bench.targets import CLIENT_KEY, MODEL, REPO, Server

MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Say hello to the benchmark."},
]
PLAIN_BODY: dict[str, Any] = {"model": MODEL, "messages": MESSAGES, "max_tokens": 16}
SESSIONS = 50  # memory probes rotate over this many sessions, each with its own question


@dataclass(frozen=True)
class Probe:
    key: str
    stream: bool = False
    concurrency: int | None = None
    rate: float | None = None
    session: bool = False

    def body(self) -> str:
        body: dict[str, Any] = dict(PLAIN_BODY, stream=True) if self.stream else dict(PLAIN_BODY)
        if self.session:
            body["messages"] = [{"role": "user", "content": "Remember the number {n}. Which number was it?"}]
            body["session_id"] = "bench-session-{n}"
        return json.dumps(body)


@dataclass(frozen=True)
class Rates:
    latency: float  # the fixed rate for the added-latency probes (500 req/s)
    low: float  # a rate LiteLLM can sustain, for the like-for-like comparison with it
    memory: float  # a rate a memory-enabled gateway can sustain on this machine


def probes_for(target: str, rates: Rates) -> list[Probe]:
    throughput = [Probe("tput_plain", concurrency=64), Probe("tput_stream", stream=True, concurrency=64)]
    latency = [Probe("lat_plain", rate=rates.latency), Probe("lat_stream", stream=True, rate=rates.latency)]
    low = [Probe("low_plain", rate=rates.low), Probe("low_stream", stream=True, rate=rates.low)]
    memory = [
        Probe("tput_plain", concurrency=64),
        Probe("mem_plain", rate=rates.memory),
        Probe("mem_session", rate=rates.memory, session=True),
    ]
    plan = {
        "direct": throughput + latency + low,
        "passthrough": throughput + latency,
        "ailb": throughput + latency + low,
        "ailb-router": throughput + latency,
        "ailb-granian": throughput + latency,
        "ailb-memory": memory,
        "litellm": throughput + low,
    }
    return plan[target]


@dataclass(frozen=True)
class Durations:
    warmup: float
    seconds: float


def run_probe(server: Server, probe: Probe, durations: Durations, cpu: int | None) -> dict[str, Any]:
    argv = [
        sys.executable, "-m", "bench.loadgen",
        "--url", server.chat_url,
        "--body", probe.body(),
        "--header", f"Authorization: Bearer {CLIENT_KEY}",
        "--warmup", str(durations.warmup),
        "--duration", str(durations.seconds),
    ]  # fmt: skip
    if probe.rate is not None:
        argv += ["--rate", str(probe.rate)]
    else:
        argv += ["--concurrency", str(probe.concurrency)]
    if probe.session:
        argv += ["--vary", str(SESSIONS)]
    if cpu is not None:
        argv += ["--cpu", str(cpu)]
    limit = durations.warmup + durations.seconds + 60
    done = subprocess.run(argv, cwd=REPO, capture_output=True, timeout=limit, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.decode(errors='replace')[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@dataclass(frozen=True)
class Figures:
    """One probe's rounds pooled: the median rate of the rounds, percentiles over every sample."""

    rps: float
    p50: float
    p99: float
    ttfb_p50: float
    ttfb_p99: float
    requests: int
    errors: int
    error_detail: str


def pool(rounds: list[dict[str, Any]]) -> Figures:
    latencies = [x for r in rounds for x in r["latencies_ms"]]
    first_bytes = [x for r in rounds for x in r["first_bytes_ms"]]
    details = [r["error_detail"] for r in rounds if r["error_detail"]]
    return Figures(
        rps=statistics.median(len(r["latencies_ms"]) / r["seconds"] for r in rounds),
        p50=percentile(latencies, 0.50),
        p99=percentile(latencies, 0.99),
        ttfb_p50=percentile(first_bytes, 0.50),
        ttfb_p99=percentile(first_bytes, 0.99),
        requests=len(latencies),
        errors=sum(r["errors"] for r in rounds),
        error_detail=details[-1] if details else "",
    )
