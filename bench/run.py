"""``python -m bench.run`` (``scripts/dev bench``): AILB against the fake called directly, a minimal pass-through
and LiteLLM's proxy, in one run, with ratios. See bench/README.md."""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import gateways
from bench.pairs import measure_pairs
from bench.probes import (
    LONG_SESSIONS,
    PLAIN_BODY,
    SLOW_RATE,
    Durations,
    Probe,
    Rates,
    pool,
    probes_for,
    run_probe,
)
from bench.report import LABELS, Results, Run, render
from bench.targets import (
    REPO,
    Server,
    StartError,
    busy_seconds,
    cpu_seconds,
    sanity_check,
    settle,
    start_fake,
    start_passthrough,
    start_passthrough_asgi,
)

TARGETS = [
    "direct",
    "passthrough-asgi",
    "passthrough",
    "ailb",
    "ailb-router",
    "ailb-baseline",
    "ailb-router-baseline",
    "ailb-compiled",
    "ailb-router-compiled",
    "ailb-granian",
    "ailb-memory",
    "litellm",
]
# granian lost to uvicorn and stays out of the default run; bench.memory_rag measures memory (with its own AILB)
DEFAULT_TARGETS = [
    *("direct", "passthrough-asgi", "passthrough", "ailb", "ailb-router"),
    *("ailb-compiled", "ailb-router-compiled", "litellm"),
]


@dataclass(frozen=True)
class Layout:
    """Which CPU runs what: load generator, fake upstream, server under test."""

    loadgen: int | None
    fake: int | None
    target: set[int] | None

    def describe(self) -> str:
        if self.target is None:
            return "one CPU: nothing pinned"
        shared = " (shared)" if self.loadgen == self.fake else ""
        return (
            f"load generator on CPU {self.loadgen}, fake upstream on CPU {self.fake}{shared}, "
            f"server under test on CPU {min(self.target)}"
        )


def cpu_layout() -> Layout:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 3:
        return Layout(cpus[0], cpus[1], {cpus[2]})
    if len(cpus) == 2:
        return Layout(cpus[0], cpus[0], {cpus[1]})
    return Layout(None, None, None)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/dev bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one short round: a smoke run (about a minute)")
    parser.add_argument("--rounds", type=int, help="rounds over every target, pooled (default 2, quick 1)")
    parser.add_argument("--duration", type=float, help="seconds measured per probe and round (default 2)")
    parser.add_argument("--warmup", type=float, help="seconds of unmeasured load before each probe (default 0.5)")
    parser.add_argument(
        "--targets", default=",".join(DEFAULT_TARGETS), help=f"comma-separated subset of {','.join(TARGETS)}"
    )
    parser.add_argument("--skip-memory-rag", action="store_true", help="leave out the bench.memory_rag stage")
    parser.add_argument(
        "--memory-rag-args",
        default="--rounds 1",
        help="options of the bench.memory_rag stage (default: '--rounds 1', to keep the run short)",
    )
    parser.add_argument(
        "--skip-instructions", action="store_true", help="leave out the bench.instructions stage (callgrind)"
    )
    parser.add_argument(
        "--instructions-args", default="", help="options of the bench.instructions stage (see its --help)"
    )
    parser.add_argument(
        "--pair-duration",
        type=float,
        help="seconds measured per run of two targets loaded at once (bench/pairs.py; default 4, quick 1)",
    )
    parser.add_argument("--rate", type=float, default=500.0, help="fixed rate of the latency probes (req/s)")
    parser.add_argument("--low-rate", type=float, default=30.0, help="fixed rate for the comparison with LiteLLM")
    parser.add_argument("--memory-rate", type=float, default=50.0, help="fixed rate of the memory probes")
    parser.add_argument("--chunk-delay-ms", type=float, default=1.0, help="pause between the fake's stream chunks")
    parser.add_argument("--litellm-venv", default=os.environ.get("LITELLM_VENV"), help="venv with litellm[proxy]")
    parser.add_argument(
        "--baseline-src",
        metavar="DIR",
        help="the ailb-baseline target runs AILB from these sources (e.g. a git worktree's src of an older commit)",
    )
    parser.add_argument("--write", metavar="PATH", help="also write the markdown report to PATH")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to SECONDS for the machine to be idle (on a shared machine)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs and stores")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.duration = args.duration or (1.0 if args.quick else 2.0)
    args.pair_duration = args.pair_duration or (1.0 if args.quick else 4.0)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if args.quick else 0.5)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    return args


def command_line(argv: list[str]) -> str:
    """The command as typed, with the LiteLLM venv's machine-specific path left out."""
    shown, hide_next = [], False
    for arg in argv:
        if hide_next:
            shown.append("<litellm-venv>")
            hide_next = False
        elif arg == "--litellm-venv":
            shown.append(arg)
            hide_next = True
        elif arg.startswith("--litellm-venv="):
            shown.append("--litellm-venv=<litellm-venv>")
        else:
            shown.append(arg)
    return shlex.join(["scripts/dev", "bench", *shown])


def starters(args: argparse.Namespace) -> dict[str, Callable[[gateways.Workspace], Server]]:
    return {
        "passthrough": lambda ws: start_passthrough(ws.fake, ws.cpus, ws.logs),
        "passthrough-asgi": lambda ws: start_passthrough_asgi(ws.fake, ws.cpus, ws.logs),
        "ailb": gateways.start_ailb,
        "ailb-router": gateways.start_ailb_two_deployments,
        "ailb-baseline": lambda ws: gateways.start_ailb_baseline(ws, args.baseline_src or ""),
        "ailb-router-baseline": lambda ws: gateways.start_ailb_router_baseline(ws, args.baseline_src or ""),
        "ailb-compiled": gateways.start_ailb_compiled,
        "ailb-router-compiled": gateways.start_ailb_router_compiled,
        "ailb-granian": gateways.start_ailb_granian,
        "ailb-memory": gateways.start_ailb_memory,
        "litellm": lambda ws: gateways.start_litellm(ws, args.litellm_venv or ""),
    }


def start_targets(args: argparse.Namespace, ws: gateways.Workspace, servers: dict[str, Server]) -> dict[str, str]:
    """Start every target into ``servers`` (filled as they come up, so a failure midway stops the ones started);
    return why the others were not."""
    skipped: dict[str, str] = {}
    start = starters(args)
    for name in args.targets:
        if name == "direct":
            servers[name] = ws.fake
            continue
        log(f"starting {name}")
        try:
            server = start[name](ws)
        except (StartError, OSError) as exc:
            skipped[name] = str(exc)
            log(f"{name} not measured: {exc}")
            continue
        servers[name] = server
        try:
            sanity_check(server, PLAIN_BODY)
            if name == "ailb-memory":
                from bench.memory_rag import prefill  # the long-session probe's sessions start past the budget

                prefill(server, LONG_SESSIONS)
        except (StartError, OSError, ValueError, KeyError, RuntimeError) as exc:
            skipped[name] = f"failed its sanity check: {exc}"
            log(f"{name} not measured: {exc}")
            server.stop()
            del servers[name]
    return skipped


def idle_cpu_notes(servers: dict[str, Server]) -> list[str]:
    """A target busy while idle would steal CPU from the others' measurements: say so."""
    notes = []
    for name, server in servers.items():
        pids = server.pids()
        if not pids:
            continue
        before = cpu_seconds(pids)
        time.sleep(1.0)
        share = cpu_seconds(pids) - before
        if share > 0.03:
            notes.append(f"{LABELS[name]} used {share:.0%} of a CPU while idle (it shares the measured CPU).")
    return notes


def measure(
    args: argparse.Namespace, servers: dict[str, Server], fake: Server, layout: Layout, rates: Rates
) -> tuple[Results, list[str]]:
    durations = Durations(args.warmup, args.duration)
    rounds: dict[tuple[str, str], list[dict[str, Any]]] = {}
    notes: list[str] = []
    others = [s for s in servers.values() if s.process is not None]
    ours = set().union(fake.pids(), *(s.pids() for s in others))
    for number in range(1, args.rounds + 1):
        for name, server, probe in schedule(servers, rates, number):
            settle(others)
            log(f"round {number}/{args.rounds}: {name} {probe.key}")
            try:
                rounds.setdefault((name, probe.key), []).append(
                    run_probe(server, probe, durations, layout.loadgen, ours)
                )
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                notes.append(f"{name} {probe.key}, round {number}: {exc}")
                log(f"{name} {probe.key} failed: {exc}")
    results: Results = {}
    for (name, key), runs in rounds.items():
        results.setdefault(name, {})[key] = pool(runs)
    return results, notes


def pair_probes(rates: Rates) -> list[Probe]:
    """Issue 13's throughput probes, by which the pairs compare their two servers."""
    return [probe for probe in probes_for("ailb", rates) if probe.key in ("issue_plain", "issue_stream")]


def schedule(servers: dict[str, Server], rates: Rates, number: int) -> list[tuple[str, Server, Probe]]:
    """Round ``number``'s measurements: each probe on every target that has it, back to back (the targets in their
    order, reversed every other round), so the figures a ratio compares are taken seconds apart, and no target
    is always the first or the last of a probe."""
    order = list(servers.items()) if number % 2 else list(reversed(servers.items()))
    by_key: dict[str, list[tuple[str, Server, Probe]]] = {}
    for name, server in order:
        for probe in probes_for(name, rates):
            by_key.setdefault(probe.key, []).append((name, server, probe))
    keys = list(dict.fromkeys(probe.key for name in servers for probe in probes_for(name, rates)))
    return [item for key in keys for item in by_key[key]]


def machine_lines(layout: Layout, load: tuple[float, float, float]) -> list[str]:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True)
    return [
        f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}, Python {platform.python_version()}",
        f"AILB commit {commit.stdout.strip() or 'unknown'}, run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"pinning: {layout.describe()}",
        f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    ]


def wait_quiet(limit: float, window: float = 3.0, threshold: float = 0.1) -> None:
    """Wait until the whole machine uses less than ``threshold`` of a CPU over ``window`` seconds."""
    deadline = time.monotonic() + limit
    while True:
        before = busy_seconds()
        time.sleep(window)
        share = (busy_seconds() - before) / window
        if share < threshold:
            log(f"machine quiet ({share:.0%} of a CPU busy)")
            return
        if time.monotonic() > deadline:
            log(f"machine still busy ({share:.0%} of a CPU); running anyway")
            return


def log_errors(servers: dict[str, Server]) -> list[str]:
    """A server that logged errors while measured has suspect figures: say so, with its first error line."""
    notes = []
    for name, server in servers.items():
        if server.log_path is None or not server.log_path.exists():
            continue
        lines = server.log_path.read_text(errors="replace").splitlines()
        errors = [line for line in lines if " ERROR " in line or line.startswith(("ERROR", "Traceback"))]
        if errors:
            notes.append(f"{LABELS[name]} logged {len(errors)} error(s) during the run; the first: `{errors[0][:200]}`")
    return notes


def foreign_load(results: Results) -> str:
    shares = [f.foreign_share for probes in results.values() for f in probes.values()]
    if not shares:
        return "no probe ran"
    return (
        f"other processes on the machine took {sum(shares) / len(shares):.0%} of a CPU on average during the "
        f"probes (at most {max(shares):.0%} in one probe)"
    )


def method_lines(args: argparse.Namespace, layout: Layout) -> list[str]:
    return [
        "Load generator: `bench/loadgen.py` (raw asyncio protocol on uvloop, httptools parser) in its own process; "
        "the direct row is its ceiling, so it is not the bottleneck for any proxy.",
        f"Throughput: closed loop, 64 connections each with one request in flight. Latency: open loop at a fixed "
        f"rate, measured from the moment each request is written. {args.rounds} round(s); in each, every probe "
        "runs on every target back to back (their order reversed every other round), "
        f"{args.warmup:g} s warm-up + {args.duration:g} s measured per probe and round (twice that below "
        f"{SLOW_RATE:g} req/s); throughput is the median "
        "of the rounds, percentiles pool every sample.",
        "Fake upstream: `bench/fake_upstream.py` (fixed completion; streams 5 chunks + [DONE], the first carrying "
        f"content, {args.chunk_delay_ms:g} ms apart). Time to first byte = first body byte of the streamed answer.",
        "CPU µs/req = the server's CPU time (its process tree) during a probe divided by the answers it gave: "
        "steadier than req/s when something else runs on the machine.",
        "Added latency = the target's percentile minus the fake's own at the same rate; "
        "'vs pass-through' = the target's p50 minus the pass-through's.",
        "All servers run at once, idle when not measured; each probe waits until they are idle again.",
        "Loaded at once (`bench/pairs.py`): after the rounds above, with their servers stopped, each pair (two "
        "deployments and one; each AILB and the raw-ASGI pass-through; compiled and all Python; the baseline and "
        "these sources) is loaded at the same time, on the server's CPU, by "
        f"issue 13's plain and streamed probes: {args.rounds} round(s), each a fresh pair of servers (started in "
        "turn in the one order and the other) and two runs per probe, each load generator started first in one, "
        f"{args.warmup:g} s warm-up + {args.pair_duration:g} s measured; the ratio shown is the median of the runs. "
        "The machine's drifting speed slows both servers alike, so their ratio is steadier than two figures taken "
        "seconds apart.",
        f"Pinning: {layout.describe()}.",
    ]


def stage(module: str, options: str, what: str) -> str | None:
    """A benchmark run as its own process after the servers above are stopped (it starts its own fake, gateways
    and pinning): ``python -m bench.<module>``'s markdown section, or None when it failed."""
    argv = [sys.executable, "-m", f"bench.{module}", *shlex.split(options)]
    log(f"{what}: {shlex.join(argv[1:])}")
    done = subprocess.run(argv, cwd=REPO, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        log(f"bench.{module} failed with code {done.returncode}; its rows are missing from this report")
        return None
    return done.stdout.strip()


# Hand-written sections of the results file (``<!-- name: written by hand -->`` … ``<!-- /name -->``) stay put;
# bench.memory_rag keeps its own log.
HAND_WRITTEN = re.compile(r"<!-- ([\w-]+): written by hand -->\n.*?<!-- /\1 -->\n", re.DOTALL)


def write_report(path: Path, report: str, memory_section: str | None) -> None:
    """The report, then the sections other benchmarks wrote (bench.fleet's, bench.memory_rag's and its log) and
    the hand-written ones, kept; bench.memory_rag's replaced when this run measured it."""
    from bench import fleet, memory_rag

    text = path.read_text() if path.exists() else ""
    report = fleet.kept_section(path, report)
    for block in HAND_WRITTEN.finditer(text):
        if block.group(0) not in memory_rag.kept_section(path, ""):
            report = report.rstrip("\n") + "\n\n" + block.group(0)
    path.write_text(memory_rag.kept_section(path, report))
    if memory_section:
        memory_rag.write_section(path, memory_section.splitlines())


def stop_targets(servers: dict[str, Server], fake: Server) -> None:
    """Stop every target's server but the fake upstream (the ``direct`` target), which the run stops last."""
    for server in servers.values():
        if server is not fake:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    layout = cpu_layout()
    rates = Rates(args.rate, args.low_rate, args.memory_rate)
    if args.wait_quiet > 0:
        wait_quiet(args.wait_quiet)
    load = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="ailb-bench-"))
    log(f"pinning: {layout.describe()}; logs in {workdir}")
    fake = start_fake({layout.fake} if layout.fake is not None else None, workdir, args.chunk_delay_ms)
    servers: dict[str, Server] = {}
    skipped: dict[str, str] = {}
    try:
        ws = gateways.Workspace(fake, layout.target, workdir)
        skipped = start_targets(args, ws, servers)
        notes = idle_cpu_notes(servers)
        results, failures = measure(args, servers, fake, layout, rates)
        failures += log_errors(servers)
        stop_targets(servers, fake)  # the pairs start their own instances (and reuse the log files' names)
        at_once = Durations(args.warmup, args.pair_duration)
        pairs, pair_failures = measure_pairs(
            starters(args), ws, list(servers), pair_probes(rates), at_once, layout.loadgen, args.rounds, log
        )
        failures += pair_failures
    finally:
        stop_targets(servers, fake)
        fake.stop()
    machine = [*machine_lines(layout, load), foreign_load(results)]
    run = Run(results, skipped, rates, command_line(argv), machine, method_lines(args, layout), pairs=pairs)
    run.notes += notes + failures
    memory_section = None if args.skip_memory_rag else stage("memory_rag", args.memory_rag_args, "memory and RAG")
    if not args.skip_instructions:
        tree = f" --compiled-tree {shlex.quote(str(workdir / 'compiled'))}" if (workdir / "compiled").is_dir() else ""
        run.instructions = stage("instructions", args.instructions_args + tree, "instructions per request")
    report = render(run)
    print(report)
    if memory_section:
        print("\n" + memory_section)
    if args.write:
        write_report(Path(args.write), report, memory_section)
        log(f"wrote {args.write}")
    if args.keep_logs or skipped or failures:
        log(f"server logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
