"""Two servers under the same load at the same moment, on the same CPU: the ratio of their throughputs.

Used for what a ratio of a few percent decides: two deployments against one, AILB against the pass-through (issue
13's goals), and a commit against an earlier one (``--baseline-src``; with the same sources on both sides, it shows
the method's own spread).

On a shared virtual machine the CPU's speed drifts by tens of percent between runs seconds apart (AILB with one
deployment and with two gave 0.74× to 1.37× of each other in adjacent 3 s runs), far more than the few percent two
deployments may cost against one. Loaded at once, both servers run on the server CPU at every moment of the probe,
so a drift slows both alike and cancels out of the ratio; the scheduler gives each about half of the CPU. The two
load generators share the load generator's CPU; each probe runs twice, each load generator started first once.

Two instances of the very same server launched one after the other are not equal either: the later one answered
more in each of five fresh pairs (its throughput ÷ the earlier one's: 1.013, 1.027, 1.023, 1.005 and 1.001). So
every round starts a fresh pair, the target first in odd rounds and the base first in even ones, and stops it after.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from bench.gateways import Starter, Workspace
from bench.probes import PLAIN_BODY, Durations, Probe, answered_per_second, loadgen_argv
from bench.targets import REPO, Server, StartError, sanity_check, settle

YARDSTICK = "passthrough-asgi"  # issue 13's "minimal raw-ASGI + aiohttp pass-through"
# (target, base): the pairs measured when both run; each ratio is the target's throughput ÷ the base's
PAIRS = [
    ("ailb-router", "ailb"),
    ("ailb-router-compiled", "ailb-compiled"),
    *((ailb, YARDSTICK) for ailb in ("ailb", "ailb-router", "ailb-compiled", "ailb-router-compiled")),
    ("ailb-compiled", "ailb"),
    ("ailb-baseline", "ailb"),
    ("ailb-router-baseline", "ailb-router"),
]
Pair = tuple[Server, Server]  # (target, base)
PairRatios = dict[str, list[float]]  # probe key -> the target's throughput ÷ the base's, one per run
PairResults = dict[tuple[str, str], PairRatios]  # by (target, base)


@dataclass
class _Running:
    """One load generator at work; what it prints goes to files, read once it has exited."""

    process: subprocess.Popen[bytes]
    stdout: IO[bytes]
    stderr: IO[bytes]

    def rate(self, limit: float) -> float:
        """Its requests per second once it ends (RuntimeError if it failed or any request did)."""
        returncode = self.process.wait(timeout=limit)
        self.stdout.seek(0)
        self.stderr.seek(0)
        if returncode != 0:
            raise RuntimeError(f"load generator failed: {self.stderr.read().decode(errors='replace')[-500:]}")
        result: dict[str, Any] = json.loads(self.stdout.read())
        if result["errors"]:
            raise RuntimeError(f"{result['errors']} errors: {result['error_detail']}")
        return answered_per_second(result)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self.stdout.close()
        self.stderr.close()


def _start(server: Server, probe: Probe, durations: Durations, cpu: int | None) -> _Running:
    stdout, stderr = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    argv = loadgen_argv(server, probe, durations, cpu)
    return _Running(subprocess.Popen(argv, cwd=REPO, stdout=stdout, stderr=stderr), stdout, stderr)


def ratio_at_once(
    target: Server, base: Server, probe: Probe, durations: Durations, cpu: int | None, *, target_first: bool
) -> float:
    """One run: both servers loaded by ``probe`` at the same time; the target's requests per second ÷ the base's."""
    limit = durations.warmup + durations.for_probe(probe) + 60
    order = [target, base] if target_first else [base, target]
    started: list[_Running] = []
    try:
        for server in order:
            started.append(_start(server, probe, durations, cpu))
        rates = [running.rate(limit) for running in started]
    finally:
        for running in started:
            running.stop()
    return rates[0] / rates[1] if target_first else rates[1] / rates[0]


def _started_pair(starters: dict[str, Starter], ws: Workspace, target: str, base: str, target_first: bool) -> Pair:
    """A fresh instance of each, started in the order asked (and stopped again if either fails its check)."""
    names = [target, base] if target_first else [base, target]
    servers: dict[str, Server] = {}
    try:
        for name in names:
            servers[name] = starters[name](ws)
            sanity_check(servers[name], PLAIN_BODY)
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return servers[target], servers[base]


def measure_pairs(
    starters: dict[str, Starter], ws: Workspace, names: list[str], probes: list[Probe], durations: Durations,
    cpu: int | None, rounds: int, log: Callable[[str], None], pairs: Sequence[tuple[str, str]] = PAIRS,
) -> tuple[PairResults, list[str]]:  # fmt: skip
    """Every pair of ``pairs`` whose two targets are both in ``names``, ``rounds`` times, a fresh pair each round,
    every probe twice with each load generator started first once: the ratios by pair, and what failed."""
    ratios: PairResults = {}
    failures: list[str] = []
    for number in range(1, rounds + 1):
        for target, base in pairs:
            if target not in names or base not in names:
                continue
            log(f"round {number}/{rounds}: {target} and {base} loaded at once")
            try:
                pair = _started_pair(starters, ws, target, base, target_first=number % 2 == 1)
            except (StartError, OSError, ValueError, KeyError, RuntimeError) as exc:
                failures.append(f"{target} and {base} at once, round {number}: did not start: {exc}")
                continue
            try:
                for probe, target_first in itertools.product(probes, (True, False)):
                    settle(list(pair))
                    try:
                        ratio = ratio_at_once(*pair, probe, durations, cpu, target_first=target_first)
                    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                        failures.append(f"{target} and {base} at once, {probe.key}, round {number}: {exc}")
                        continue
                    ratios.setdefault((target, base), {}).setdefault(probe.key, []).append(ratio)
            finally:
                for server in pair:
                    server.stop()
    return ratios, failures
