"""``python -m bench.fleet``: what running as a fleet costs — ``--workers 1`` against ``--workers 2``, and a metered
client key's limits kept in Redis against the same limits in process. See bench/README.md ("The fleet").

Every target talks to the same fake upstream; a ``redis-server`` (Debian's) runs beside the fake. Each target is
measured with the main benchmark's probes (closed loop at concurrency 64; open loop at a fixed rate), and the
section it writes replaces the one between the fleet markers in the file given to ``--write``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.gateways import Workspace, _ailb_argv, ailb_env
from bench.probes import PLAIN_BODY, Durations, Figures, Probe, pool, run_probe
from bench.report import _added, _num, _rate, _ratio, _table
from bench.run import command_line, cpu_layout, foreign_load, log, machine_lines, wait_quiet
from bench.targets import CLIENT_KEY, Server, free_port, launch, launch_ready, sanity_check, settle, start_fake

BEGIN, END = "<!-- fleet: written by python -m bench.fleet -->", "<!-- /fleet -->"
LABELS = {
    "workers1": "`--workers 1` (one process), `REDIS_URL` set, no metered key",
    "workers2": "`--workers 2` on the same one CPU",
    "workers2-both": "`--workers 2` on both CPUs (shared with the load generator and the fake)",
    "limits-local": "a metered key (rpm, tpm, budget), limits in process",
    "limits-redis": "the same metered key, limits in Redis",
}
KEY_CONFIG = """client_keys:
  {key}:
    name: bench
    rpm: 1000000000
    tpm: 1000000000000
    max_budget_usd: 1000000000
"""


def start_redis(ws: Workspace, cpus: set[int] | None) -> tuple[Server, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = launch("redis", f"http://127.0.0.1:{port}", argv, {}, cpus, ws.logs)
    time.sleep(0.5)
    return server, f"redis://127.0.0.1:{port}/0"


def start_target(name: str, ws: Workspace, redis_url: str, cpus: set[int] | None) -> Server:
    port = free_port()
    extra = {"REDIS_URL": redis_url} if name != "limits-local" else {"SPEND_PATH": "none"}
    if name.startswith("limits"):
        config = ws.logs / "bench-key.yaml"
        config.write_text(KEY_CONFIG.format(key=CLIENT_KEY))
        extra["AILB_CONFIG"] = str(config)
    argv = _ailb_argv() + (["--workers", "2"] if name.startswith("workers2") else [])
    server = launch_ready(name, f"http://127.0.0.1:{port}/v1", argv, ailb_env(ws.fake, port, **extra), cpus,
                          ws.logs, 60)  # fmt: skip
    sanity_check(server, PLAIN_BODY)
    return server


def section(results: dict[str, dict[str, Figures]], rate: float, notes: list[str]) -> list[str]:
    def figure(name: str, key: str) -> Figures | None:
        return results.get(name, {}).get(key)

    rows = []
    for name, label in LABELS.items():
        plain, latency = figure(name, "tput_plain"), figure(name, "lat_plain")
        if plain is None or latency is None:
            continue
        base = "workers1" if name.startswith("workers") else "limits-local"
        base_plain, base_latency = figure(base, "tput_plain"), figure(base, "lat_plain")
        rows.append([
            label, _rate(plain.rps), _ratio(plain.rps, base_plain.rps if base_plain else None), _rate(plain.cpu_us),
            _num(latency.p50), _num(latency.p99), _added(latency.p50, base_latency.p50 if base_latency else None),
        ])  # fmt: skip
    header = ["target", "plain req/s (c64)", "vs its base", "CPU µs/req", f"p50 ms at {rate:g} req/s", "p99 ms",
              "added p50 ms vs its base"]  # fmt: skip
    return [BEGIN, "", "## The fleet: workers and Redis-backed limits", "", *_table(header, rows), "", *notes, END]


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
    """``report`` (the main benchmark's) followed by the fleet section ``path`` already holds, if any."""
    text = path.read_text() if path.exists() else ""
    if BEGIN not in text or END not in text:
        return report
    block = BEGIN + text.partition(BEGIN)[2].partition(END)[0] + END
    return report.rstrip("\n") + "\n\n" + block + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--write", metavar="PATH", help="replace the fleet section of this markdown file")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS", help="wait for an idle machine")
    args = parser.parse_args(argv)
    if args.wait_quiet > 0:
        wait_quiet(args.wait_quiet)
    layout = cpu_layout()
    load = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="ailb-bench-fleet-"))
    side = {layout.fake} if layout.fake is not None else None
    fake = start_fake(side, workdir, 1.0)
    ws = Workspace(fake, layout.target, workdir)
    redis, redis_url = start_redis(ws, side)
    servers: dict[str, Server] = {}
    results: dict[str, dict[str, Figures]] = {}
    try:
        both = set(os.sched_getaffinity(0))
        for name in LABELS:
            log(f"starting {name}")
            servers[name] = start_target(name, ws, redis_url, both if name == "workers2-both" else layout.target)
        probes = [Probe("tput_plain", concurrency=64), Probe("lat_plain", rate=args.rate)]
        rounds: dict[tuple[str, str], list[dict[str, Any]]] = {}
        ours = set().union(fake.pids(), redis.pids(), *(s.pids() for s in servers.values()))
        for number in range(1, args.rounds + 1):
            for name, server in servers.items():
                for probe in probes:
                    settle(list(servers.values()))
                    log(f"round {number}/{args.rounds}: {name} {probe.key}")
                    figures = run_probe(server, probe, Durations(0.5, args.duration), layout.loadgen, ours)
                    rounds.setdefault((name, probe.key), []).append(figures)
        for (name, key), runs in rounds.items():
            results.setdefault(name, {})[key] = pool(runs)
    finally:
        for server in [*servers.values(), redis, fake]:
            server.stop()
    notes = [f"- {line}" for line in (*machine_lines(layout, load), foreign_load(results))]
    notes += [f"- produced by `{command_line(argv).replace('scripts/dev bench', 'python -m bench.fleet')}`"]
    lines = section(results, args.rate, notes)
    print("\n".join(lines))
    if args.write:
        write_section(Path(args.write), lines)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
