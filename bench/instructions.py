"""``python -m bench.instructions``: what the router's choice between two deployments costs AILB, counted, not timed.

On a shared 2-core machine, throughput varies by ±6–8 % between adjacent measurements of the same server: more than
the 5 % the goal "two deployments vs one ≥ 0.95×" allows. This stage runs AILB with one deployment and with two
under callgrind (Debian's ``valgrind``) and counts the instructions the server executes per answered request, at
concurrency 64 as the throughput probes load it. The count repeats within 0.15 % from run to run. Both servers
make the same system calls per request (``strace -c``: a read and a write each way, and ``getpid``), so the
difference between them is in user space: these counts show what runs there, not how long it takes (cache misses
and mispredicted branches are not counted; ``bench.pairs`` times both at once). They do not compare AILB with the
pass-through, whose system calls differ.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import gateways
from bench.probes import ISSUE_STREAM, PLAIN_BODY, Durations, Probe, run_probe
from bench.run import command_line, cpu_layout, log, machine_lines
from bench.targets import Server, StartError, clean_env, free_port, launch_ready, request, sanity_check, start_fake

PROBES = (
    Probe("issue_plain", concurrency=64, shape=ISSUE_STREAM),
    Probe("issue_stream", stream=True, concurrency=64, shape=ISSUE_STREAM),
)
# vgdb, which callgrind_control talks through, names its pipes after USER and HOST: both sides must agree.
VGDB_ENV = {"USER": "ailb-bench", "HOST": "127.0.0.1"}
GOAL = 0.95


@dataclass(frozen=True)
class Counted:
    requests: int
    instructions: int

    @property
    def per_request(self) -> float:
        return self.instructions / self.requests


@dataclass(frozen=True)
class Pair:
    """One build of AILB with one deployment and with two."""

    label: str
    compiled: bool


PAIRS = (Pair("all Python", compiled=False), Pair("compiled", compiled=True))


def start_counted(name: str, ws: gateways.Workspace, deployments: int, compiled: bool) -> Server:
    """AILB under callgrind, counting nothing until told to (``--instr-atstart=no``); its n-th dump is
    ``dump_path(ws, name, n)``."""
    port = free_port()
    if deployments == 1:
        env = gateways.ailb_env(ws.fake, port)
    else:
        env = gateways.two_deployments_env(ws, port, name)
    if compiled:
        env["PYTHONPATH"] = str(gateways.compiled_tree(ws))
    env.update(VGDB_ENV)
    out = ws.logs / f"{name}.callgrind"
    argv = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
        sys.executable, "-m", "ailb", "serve",
    ]  # fmt: skip
    return launch_ready(name, f"http://127.0.0.1:{port}/v1", argv, env, ws.cpus, ws.logs, 300)


def dump_path(ws: gateways.Workspace, name: str, number: int) -> Path:
    return ws.logs / f"{name}.callgrind.{number}"


def control(server: Server, *options: str) -> None:
    assert server.process is not None
    argv = ["callgrind_control", *options, str(server.process.pid)]
    done = subprocess.run(argv, env={**clean_env({}), **VGDB_ENV}, capture_output=True, text=True, check=False)
    if done.returncode != 0 or "Error" in done.stdout + done.stderr:
        raise RuntimeError(f"callgrind_control {' '.join(options)} failed: {done.stdout}{done.stderr}")


def answered(server: Server) -> int:
    """Chat requests the server has answered, by its own ``ailb_requests_total``."""
    status, body = request(server.base_url.removesuffix("/v1"), "GET", "/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    lines = body.decode().splitlines()
    return round(sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("ailb_requests_total{")))


def dumped_total(path: Path) -> int:
    """The instruction total of a callgrind dump (its ``totals:`` line), and the dump removed."""
    totals = [line for line in path.read_text().splitlines() if line.startswith("totals:")]
    path.unlink()
    if not totals:
        raise RuntimeError(f"{path.name} has no totals line")
    return int(totals[-1].split()[1])


def count(server: Server, probe: Probe, args: argparse.Namespace, cpu: int | None, dump: Path) -> Counted:
    """Instructions per request of ``probe``'s load: a warm-up uncounted, then ``args.seconds`` counted."""
    run_probe(server, probe, Durations(0.0, args.warmup), cpu, set())
    before = answered(server)
    control(server, "--instr=on")
    run_probe(server, probe, Durations(0.0, args.seconds), cpu, set())
    control(server, "--instr=off")
    control(server, "--dump")
    requests = answered(server) - before
    if not dump.exists():
        raise RuntimeError(f"callgrind wrote no dump for {server.name} {probe.key}")
    if requests <= 0:
        raise RuntimeError(f"{server.name} answered nothing during {probe.key}")
    return Counted(requests, dumped_total(dump))


def measure_pair(ws: gateways.Workspace, pair: Pair, args: argparse.Namespace, cpu: int | None) -> dict[str, Counted]:
    """``{"<deployments> <probe key>": Counted}`` for one build, one server at a time (callgrind is slow)."""
    counted: dict[str, Counted] = {}
    for deployments in (1, 2):
        name = f"ailb-{'compiled-' if pair.compiled else ''}{deployments}-counted"
        log(f"counting instructions: {name} (starting under callgrind)")
        server = start_counted(name, ws, deployments, pair.compiled)
        try:
            sanity_check(server, PLAIN_BODY)
            for number, probe in enumerate(PROBES, start=1):
                figures = counted[f"{deployments} {probe.key}"] = count(
                    server, probe, args, cpu, dump_path(ws, name, number)
                )
                log(f"  {probe.key}: {figures.per_request:,.0f} instructions per request")
        finally:
            server.stop()
    return counted


def section(results: dict[str, dict[str, Counted]], args: argparse.Namespace, facts: list[str]) -> list[str]:
    lines = [
        "## Two deployments against one, by instructions per request (callgrind)",
        "",
        "Throughput varies more between adjacent measurements on this machine than the 5 % the two-deployments goal "
        "allows; these counts do not (they leave out how long the instructions take: cache misses, mispredicted "
        "branches). The instructions AILB executes per answered request (user space: both servers make the same "
        "system calls), one server at a time under callgrind, issue 13's ~2 KB request at "
        f"concurrency 64: {args.warmup:g} s uncounted, then {args.seconds:g} s counted.",
        "",
        "| build | probe | one deployment | two deployments | extra per request | one / two | ≥ 0.95× |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, counted in results.items():
        for probe in PROBES:
            one, two = counted[f"1 {probe.key}"], counted[f"2 {probe.key}"]
            ratio = one.per_request / two.per_request
            kind = "streamed" if probe.stream else "plain"
            lines.append(
                f"| {label} | {kind} | {one.per_request:,.0f} ({one.requests:,} requests) | "
                f"{two.per_request:,.0f} ({two.requests:,} requests) | {two.per_request - one.per_request:+,.0f} | "
                f"{ratio:.3f}× | {'yes' if ratio >= GOAL else '**no**'} |"
            )
    return [*lines, "", *facts]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds counted per probe (default 10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of uncounted load first (default 3)")
    parser.add_argument("--python-only", action="store_true", help="leave out the compiled build")
    parser.add_argument("--compiled-tree", metavar="DIR", help="a compiled tree bench.gateways made (else one is made)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        log("valgrind is not installed (Debian: apt-get install valgrind); no instruction counts")
        return 2
    layout = cpu_layout()
    workdir = Path(tempfile.mkdtemp(prefix="ailb-bench-instructions-"))
    fake = start_fake({layout.fake} if layout.fake is not None else None, workdir, 1.0)
    ws = gateways.Workspace(fake, layout.target, workdir)
    if args.compiled_tree and Path(args.compiled_tree).is_dir():
        (workdir / "compiled").symlink_to(Path(args.compiled_tree).resolve())  # where compiled_tree(ws) looks
    results: dict[str, dict[str, Counted]] = {}
    try:
        for pair in PAIRS[:1] if args.python_only else PAIRS:
            results[pair.label] = measure_pair(ws, pair, args, layout.loadgen)
    except (StartError, RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        log(f"instruction counts failed: {exc} (logs in {workdir})")
        return 1
    finally:
        fake.stop()
    facts = [f"- {line}" for line in machine_lines(layout, (0.0, 0.0, 0.0))[:3]]
    shown = [arg for arg in argv if arg not in (args.compiled_tree, "--compiled-tree")]  # no path of this machine
    facts.append(f"- produced by `{command_line(shown).replace('scripts/dev bench', 'python -m bench.instructions')}`")
    print("\n".join(section(results, args, facts)))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
