"""``python -m bench.memory_rag``: the memory and knowledge-base rows of the performance goals, in one run.

- **Memory enabled, requests without a session**: closed-loop throughput at concurrency 64 of a memory-enabled
  ``ailb serve`` against a memory-off one (plain requests, no ``session_id``). The goal is judged with both loaded
  at once (``bench.pairs``: a fresh pair per ``--pair-rounds`` round, each load generator started first once),
  as a drift of the machine's speed between two probes moved this ratio from 1.06× to 0.84× between two runs of
  the same code; the figures measured in turn (off, on, on, off in each round) are shown beside it.
- **A request with a long memory session** under a fixed rate of such requests (``--rate``, default 50 req/s),
  open loop, against the same memory-enabled gateway without a session at that rate: ``--sessions`` sessions
  (10) used in turn, each first filled past the memory token budget (so every recall embeds the new message and
  searches the session by similarity, and every stored turn is embedded in the background). Two kinds of
  question: short ones (a chat user's typical message) and ~400-token ones, the latter also at ``--long-rate``
  (10 req/s). Recall embeds a ~400-token question's first ``MEMORY_QUERY_TOKENS`` (32) tokens, ~11 ms of CPU on
  a 2-CPU test machine; its stored turn fills the model's window, ~70 ms, in the background. At 50 req/s that
  background work exceeds one CPU: it falls behind (at a lower priority) while the requests are measured, and
  every probe waits until it has caught up.
- **Knowledge-base retrieval while an ingest runs**: ``bench.bench_rag --during-ingest-only`` (in one process,
  pinned to the server's CPU): retrieval from a small collection, idle and while another ingest runs.

The servers, the fake upstream and the load generator are pinned as in ``bench.run`` (server on its own CPU).
``--write PATH`` replaces the section between this benchmark's markers in PATH (``bench.run --write`` keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import gateways
from bench.pairs import measure_pairs
from bench.probes import _FILLER, CHAT_QUESTION, LONG_SESSION, PLAIN_BODY, Durations, Figures, Probe, pool, run_probe
from bench.report import _added, _num, _rate, _ratio, _spread, _table, judged, spread_at_least
from bench.run import command_line, cpu_layout, foreign_load, log, machine_lines, stop_targets, wait_quiet
from bench.targets import MODEL, REPO, Server, request, sanity_check, settle, start_fake

BEGIN, END = "<!-- memory-rag: written by python -m bench.memory_rag -->", "<!-- /memory-rag -->"
# Written by hand (profiles, the figures of each step): kept by bench.run --write and bench.memory_rag --write.
LOG_BEGIN, LOG_END = "<!-- memory-rag-log: written by hand -->", "<!-- /memory-rag-log -->"
SESSION = LONG_SESSION  # bench.run's long-session probe uses the same sessions, filled by ``prefill``
LONG_QUESTION = f"Question {{i}} in session {{n}}: what should I plant next? {_FILLER}"
SHORT_QUESTION = CHAT_QUESTION
PREFILL_TURNS = 7  # ~450-token turns: 7 of them exceed the default MEMORY_MAX_TOKENS (2000) with room to spare
GOALS = {"added_p50": 20.0, "p99": 60.0, "no_session_ratio": 0.97, "rag_p50": 50.0}
THROUGHPUT = Probe("tput_plain", concurrency=64)  # without a session, memory on and off


@dataclass(frozen=True)
class SessionProbe(Probe):
    """A probe whose requests carry one of ``count`` sessions in turn, with ``question`` as the user message.

    The load generator numbers requests ({i}) from 0 in every run: ``run`` keeps the questions of different
    rounds apart, or the second round would find the first round's query vectors in the cache."""

    question: str = ""
    count: int = 0
    run: int = 0

    def body(self) -> str:
        if not self.question:
            return super().body()
        messages = [{"role": "user", "content": self.question.replace("{i}", f"{self.run}.{{i}}")}]
        return json.dumps({**PLAIN_BODY, "messages": messages, "session_id": SESSION})

    @property
    def sessions(self) -> int:
        return self.count or super().sessions


def steps(args: argparse.Namespace, run: int) -> list[tuple[str, Probe]]:
    """One round: throughput without a session first (memory off, on, on, off: each order half the time, before
    the session probes leave the model any work), then the memory-enabled gateway at the fixed rates."""
    rate, sessions = args.rate, args.sessions
    first, second = ("ailb", "ailb-memory") if run % 2 else ("ailb-memory", "ailb")
    plan = [(name, THROUGHPUT) for name in (first, second, second, first)]
    plan += [
        ("ailb-memory", Probe("mem_plain", rate=rate)),
        ("ailb-memory", SessionProbe("mem_long_short", rate=rate, question=SHORT_QUESTION, count=sessions, run=run)),
        ("ailb-memory", SessionProbe("mem_long_low", rate=args.long_rate, question=LONG_QUESTION, count=sessions,
                                     run=run)),
        ("ailb-memory", SessionProbe("mem_long", rate=rate, question=LONG_QUESTION, count=sessions, run=run)),
    ]  # fmt: skip
    return plan


def prefill(server: Server, sessions: int) -> None:
    """Fill every session past the memory budget, then wait until the writer has stored and embedded it all."""
    for turn in range(PREFILL_TURNS):
        for n in range(sessions):
            question = LONG_QUESTION.replace("{i}", f"prefill-{turn}").replace("{n}", str(n))
            body = {**PLAIN_BODY, "messages": [{"role": "user", "content": question}], "session_id": SESSION}
            encoded = json.dumps(body).replace("{n}", str(n)).encode()
            status, answer = request(server.base_url, "POST", "/chat/completions", encoded, timeout=60)
            if status != 200:
                raise RuntimeError(f"prefill request answered {status}: {answer[:200]!r}")
    settle([server], limit=120)


def settle_memory(servers: dict[str, Server], limit: float = 120.0) -> None:
    """Wait until the memory writer has no turn queued, then until every server is idle. (On a busy machine the
    low-priority embedding of a backlog can look idle by CPU use alone, and would then compete with the next probe.)"""
    memory = servers.get("ailb-memory")
    deadline = time.monotonic() + limit
    while memory is not None and time.monotonic() < deadline:
        status, body = request(memory.base_url.removesuffix("/v1"), "GET", "/api/dashboard")
        if status != 200 or json.loads(body).get("memory", {}).get("queued", 0) == 0:
            break
        time.sleep(0.5)
    settle(list(servers.values()), limit=60)


def measure(
    servers: dict[str, Server], args: argparse.Namespace, loadgen_cpu: int | None
) -> tuple[dict[str, dict[str, Figures]], list[str]]:
    rounds: dict[tuple[str, str], list[dict[str, Any]]] = {}
    notes: list[str] = []
    ours = set().union(*(s.pids() for s in servers.values()))
    for number in range(1, args.rounds + 1):
        for name, probe in steps(args, number):
            server = servers[name]
            settle_memory(servers)
            log(f"round {number}/{args.rounds}: {name} {probe.key}")
            try:
                figures = run_probe(server, probe, Durations(args.warmup, args.duration), loadgen_cpu, ours)
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                notes.append(f"{name} {probe.key}, round {number}: {exc}")
                continue
            rounds.setdefault((name, probe.key), []).append(figures)
            one = pool([figures])
            log(f"  {one.rps:,.0f} req/s, p50 {one.p50:.1f} ms, p99 {one.p99:.1f} ms, {one.cpu_us:,.0f} CPU µs/req, "
                f"other processes {one.foreign_share:.0%} of a CPU")  # fmt: skip
    results: dict[str, dict[str, Figures]] = {}
    for (name, key), runs in rounds.items():
        results.setdefault(name, {})[key] = pool(runs)
    return results, notes


def no_session_at_once(
    ws: gateways.Workspace, args: argparse.Namespace, cpu: int | None
) -> tuple[list[float], list[str]]:
    """Memory on ÷ off without a session, both loaded at once, a fresh pair per round: the ratios, what failed."""
    starters: dict[str, gateways.Starter] = {"ailb-memory": gateways.start_ailb_memory, "ailb": gateways.start_ailb}
    durations = Durations(args.warmup, args.pair_duration)
    pair = ("ailb-memory", "ailb")
    ratios, failures = measure_pairs(starters, ws, [*pair], [THROUGHPUT], durations, cpu, args.pair_rounds, log, [pair])
    return ratios.get(pair, {}).get(THROUGHPUT.key, []), failures


def rag_row(args: argparse.Namespace, cpus: set[int] | None) -> dict[str, float]:
    """``bench.bench_rag --during-ingest-only`` in a process of its own, on the server's CPU, ``args.rag_rounds``
    times; the medians of the rounds' percentiles."""
    argv = [sys.executable, "-m", "bench.bench_rag", "--chunks", str(args.rag_chunks), "--requests", "50",
            "--during-ingest-only", str(args.rag_busy_chunks)]  # fmt: skip
    runs: list[dict[str, float]] = []
    for number in range(1, args.rag_rounds + 1):
        log(f"round {number}/{args.rag_rounds}: knowledge-base retrieval during an ingest")
        done = subprocess.run(
            argv, cwd=REPO, capture_output=True, text=True, timeout=1800, check=False,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"bench.bench_rag failed: {done.stderr[-500:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {key: sorted(run[key] for run in runs)[len(runs) // 2] for key in runs[0]}


def section(
    results: dict[str, dict[str, Figures]], at_once: list[float], rag: dict[str, float] | None,
    args: argparse.Namespace, notes: list[str],
) -> list[str]:  # fmt: skip
    lines = [BEGIN, "", "## Memory and knowledge bases under load", "", *goal_lines(results, at_once, rag, args), ""]
    lines += [*latency_table(results.get("ailb-memory", {}), args), ""]
    plain, memory = results.get("ailb", {}).get("tput_plain"), results.get("ailb-memory", {}).get("tput_plain")
    if plain is not None and memory is not None:
        rows = [
            ["memory off", _rate(plain.rps), _num(plain.cpu_us, 0)],
            ["memory on", _rate(memory.rps), _num(memory.cpu_us, 0)],
            ["memory on ÷ off", _ratio(memory.rps, plain.rps), _ratio(plain.cpu_us, memory.cpu_us)],
        ]
        if at_once:
            rows.append(["memory on ÷ off, both loaded at once", _spread(at_once), "–"])
        header = ["without a session, concurrency 64 (median of the probes)", "req/s", "CPU µs/req (÷: off ÷ on)"]
        lines += [*_table(header, rows), ""]
    if rag is not None:
        rows = [
            ["idle", _num(rag["retrieve_idle_p50"]), _num(rag["retrieve_idle_p99"])],
            ["while an ingest runs", _num(rag["retrieve_busy_p50"]), _num(rag["retrieve_busy_p99"])],
            ["event-loop lag while an ingest runs (5 ms timer)", _num(rag["lag_busy_p50"]), _num(rag["lag_busy_p99"])],
        ]
        lines += [*_table(["knowledge-base retrieval (in process, on the server's CPU)", "p50 ms", "p99 ms"], rows), ""]
    return [*lines, *notes, "", END]


def latency_table(memory: dict[str, Figures], args: argparse.Namespace) -> list[str]:
    base = memory.get("mem_plain")
    labels = {
        "mem_plain": (f"without a session, {args.rate:g} req/s", args.rate),
        "mem_long_short": (f"long session ({args.sessions} in turn), chat-length new questions, {args.rate:g} req/s",
                           args.rate),
        "mem_long": (f"long session, ~400-token new questions, {args.rate:g} req/s", args.rate),
        "mem_long_low": (f"long session, ~400-token new questions, {args.long_rate:g} req/s", args.long_rate),
    }  # fmt: skip
    rows = []
    for key, (label, rate) in labels.items():
        figures = memory.get(key)
        if figures is None:
            continue
        added = ["", ""]
        if base is not None and key != "mem_plain":
            added = [_added(figures.p50, base.p50), _added(figures.p99, base.p99)]
        errors = f" ⚠ {figures.errors} errors" if figures.errors else ""
        busy = f"{figures.cpu_us * rate / 1e4:.0f} %"  # the server's CPU time per second at this rate
        cpu = [_num(figures.cpu_us / 1000, 2), busy]
        rows.append([label + errors, _rate(figures.rps), _num(figures.p50), _num(figures.p99), *added, *cpu])
    header = ["memory-enabled AILB", "answered req/s", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms"]
    return _table([*header, "server CPU ms/req", "of one CPU"], rows)


def goal_lines(
    results: dict[str, dict[str, Figures]], at_once: list[float], rag: dict[str, float] | None,
    args: argparse.Namespace,
) -> list[str]:  # fmt: skip
    memory, plain = results.get("ailb-memory", {}), results.get("ailb", {})
    rows = []
    base = memory.get("mem_plain")
    kinds = [("mem_long_short", f"chat-length questions, {args.rate:g} req/s"),
             ("mem_long", f"~400-token questions, {args.rate:g} req/s"),
             ("mem_long_low", f"~400-token questions, {args.long_rate:g} req/s")]  # fmt: skip
    for key, kind in kinds:
        figures = memory.get(key)
        if figures is not None and base is not None:
            added = figures.p50 - base.p50
            met = added <= GOALS["added_p50"] and figures.p99 <= GOALS["p99"]
            rows.append([f"a request with a long session ({kind}): ≤ +20 ms p50 and p99 ≤ 60 ms",
                         f"{added:+.1f} ms p50, p99 {figures.p99:.1f} ms", "yes" if met else "**no**"])  # fmt: skip
    in_turn = None
    if "tput_plain" in plain and "tput_plain" in memory:
        ratio = memory["tput_plain"].rps / plain["tput_plain"].rps
        cpu = plain["tput_plain"].cpu_us / memory["tput_plain"].cpu_us
        in_turn = f"{ratio:.2f}× (by CPU time per request: {cpu:.2f}×)", ratio >= GOALS["no_session_ratio"]
    if outcome := judged(spread_at_least(at_once, GOALS["no_session_ratio"]), in_turn):
        rows.append(["memory enabled, requests without a session: ≥ 0.97× of memory off", outcome[0],
                     "yes" if outcome[1] else "**no**"])  # fmt: skip
    if rag is not None:
        p50 = rag["retrieve_busy_p50"]
        rows.append(["knowledge-base retrieval while an ingest runs: ≤ 50 ms p50", f"{p50:.1f} ms p50",
                     "yes" if p50 <= GOALS["rag_p50"] else "**no**"])  # fmt: skip
    return _table(["goal", "measured", "met"], rows)


def write_section(path: Path, lines: list[str]) -> None:
    text = path.read_text() if path.exists() else ""
    block = "\n".join(lines) + "\n"
    if BEGIN in text and END in text:
        before, _, rest = text.partition(BEGIN)
        text = before + block + rest.partition(END)[2].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


def kept_section(path: Path, report: str) -> str:
    """``report`` followed by this benchmark's section and its hand-written log that ``path`` already holds."""
    text = path.read_text() if path.exists() else ""
    for begin, end in ((BEGIN, END), (LOG_BEGIN, LOG_END)):
        if begin in text and end in text:
            report = report.rstrip("\n") + "\n\n" + begin + text.partition(begin)[2].partition(end)[0] + end + "\n"
    return report


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_rag", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--rounds", type=int, default=2, help="rounds, interleaved; percentiles pool every sample")
    parser.add_argument("--duration", type=float, default=3.0,
                        help="seconds measured per probe and round (twice that below 100 req/s)")  # fmt: skip
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--rate", type=float, default=50.0, help="fixed rate of the memory probes (req/s)")
    parser.add_argument(
        "--long-rate",
        type=float,
        default=10.0,
        help="a rate at which the model also keeps up with the ~400-token questions' stored turns (req/s)",
    )
    parser.add_argument("--sessions", type=int, default=10, help="long sessions used in turn")
    parser.add_argument("--pair-rounds", type=int, default=3,
                        help="rounds of memory on and off loaded at once (a fresh pair each; 0: none)")  # fmt: skip
    parser.add_argument("--pair-duration", type=float, default=4.0, help="seconds measured per run loaded at once")
    parser.add_argument("--rag-chunks", type=int, default=300, help="chunks of the collection queried")
    parser.add_argument("--rag-busy-chunks", type=int, default=400, help="chunks of the ingest that runs meanwhile")
    parser.add_argument("--rag-rounds", type=int, default=1, help="runs of the knowledge-base row (~1 min each)")
    parser.add_argument("--skip-rag", action="store_true", help="only the memory rows")
    parser.add_argument("--write", metavar="PATH", help="replace this benchmark's section of a markdown file")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS", help="wait for an idle machine")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.wait_quiet > 0:
        wait_quiet(args.wait_quiet)
    layout = cpu_layout()
    load = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="ailb-bench-memory-"))
    fake = start_fake({layout.fake} if layout.fake is not None else None, workdir, 1.0)
    ws = gateways.Workspace(fake, layout.target, workdir)
    servers: dict[str, Server] = {}
    try:
        servers["ailb"] = gateways.start_ailb(ws)
        servers["ailb-memory"] = gateways.start_ailb_memory(ws)
        for server in servers.values():
            sanity_check(server, PLAIN_BODY)
        log(f"filling {args.sessions} sessions past the memory budget")
        prefill(servers["ailb-memory"], args.sessions)
        results, notes = measure(servers, args, layout.loadgen)
        stop_targets(servers, fake)  # the pairs start their own (the memory store is open in one process)
        at_once, failures = no_session_at_once(ws, args, layout.loadgen)
        notes += failures
    finally:
        for server in [*servers.values(), fake]:
            server.stop()
    rag = None if args.skip_rag else rag_row(args, layout.target)
    facts = [*machine_lines(layout, load), foreign_load(results)]
    facts.append(f"produced by `{command_line(argv).replace('scripts/dev bench', 'python -m bench.memory_rag')}`")
    facts.append(f"model: {MODEL} on the fake upstream; memory: the default budget (`MEMORY_MAX_TOKENS` 2000)")
    lines = section(results, at_once, rag, args, [f"- {line}" for line in facts] + [f"- ⚠ {note}" for note in notes])
    print("\n".join(lines))
    if args.write:
        write_section(Path(args.write), lines)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
