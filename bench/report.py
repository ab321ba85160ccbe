"""The markdown report: figures and ratios from one run, the goals they are held to, and how they were made."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.pairs import PAIRS, YARDSTICK, PairRatios, PairResults
from bench.probes import LONG_SESSIONS, SESSIONS, Figures, Rates

LABELS = {
    "direct": "fake upstream, called directly",
    "passthrough-asgi": "minimal raw-ASGI + aiohttp pass-through (`bench/passthrough_asgi.py`, uvicorn)",
    "passthrough": "minimal aiohttp pass-through (`bench/passthrough.py`)",
    "ailb": "**AILB** (`ailb serve`, all Python: uvicorn's Server, uvloop, AILB's httptools protocol)",
    "ailb-router": "AILB, two deployments (router choosing)",
    "ailb-baseline": "AILB from the baseline sources (`--baseline-src`)",
    "ailb-router-baseline": "AILB from the baseline sources, two deployments (`--baseline-src`)",
    "ailb-compiled": "**AILB compiled** (the hot path as C extensions: `pip install .` with a C compiler, the image)",
    "ailb-router-compiled": "AILB compiled, two deployments (router choosing)",
    "ailb-granian": "AILB under granian (uvloop)",
    "ailb-memory": "AILB, memory enabled",
    "litellm": "LiteLLM proxy",
}
Results = dict[str, dict[str, Figures]]


@dataclass
class Run:
    results: Results
    skipped: dict[str, str]
    rates: Rates
    command: str
    machine: list[str]
    method: list[str]
    notes: list[str] = field(default_factory=list)
    instructions: str | None = None  # bench.instructions' section: two deployments vs one, counted
    pairs: PairResults = field(default_factory=dict)  # bench.pairs: target ÷ base, both loaded at once

    def get(self, target: str, probe: str) -> Figures | None:
        return self.results.get(target, {}).get(probe)


def _num(value: float, digits: int = 2) -> str:
    return "–" if math.isnan(value) else f"{value:,.{digits}f}"


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or base is None or base == 0 or math.isnan(value) or math.isnan(base):
        return "–"
    return f"{value / base:.2f}×"


def _added(value: float | None, base: float | None) -> str:
    if value is None or base is None or math.isnan(value) or math.isnan(base):
        return "–"
    return f"{value - base:+.2f}"


def _errors(figures: Figures) -> str:
    return f" ⚠ {figures.errors} errors ({figures.error_detail})" if figures.errors else ""


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def throughput_table(run: Run) -> list[str]:
    rows = []
    direct_plain, direct_stream = run.get("direct", "tput_plain"), run.get("direct", "tput_stream")
    pt_plain, pt_stream = run.get("passthrough", "tput_plain"), run.get("passthrough", "tput_stream")
    for target, label in LABELS.items():
        plain, stream = run.get(target, "tput_plain"), run.get(target, "tput_stream")
        if plain is None:
            continue
        row = [label + _errors(plain), _rate(plain.rps), _ratio(plain.rps, _rps(direct_plain))]
        row += [_ratio(plain.rps, _rps(pt_plain)), _rate(plain.cpu_us)]
        if stream is not None:
            row += [_rate(stream.rps) + _errors(stream), _ratio(stream.rps, _rps(direct_stream))]
            row += [_ratio(stream.rps, _rps(pt_stream)), _rate(stream.cpu_us)]
        else:
            row += ["–", "–", "–", "–"]
        rows.append(row)
    header = ["target", "plain req/s", "vs direct", "vs pass-through", "CPU µs/req"]
    header += ["streamed req/s", "vs direct", "vs pass-through", "CPU µs/req"]
    return _table(header, rows)


def _rps(figures: Figures | None) -> float | None:
    return None if figures is None else figures.rps


def latency_table(run: Run, probe: str, targets: list[str], first_byte: bool) -> list[str]:
    def pick(figures: Figures | None, which: str) -> float | None:
        if figures is None:
            return None
        value: float = getattr(figures, ("ttfb_" if first_byte else "") + which)
        return value

    direct, passthrough = run.get("direct", probe), run.get("passthrough", probe)
    rows = []
    for target in targets:
        figures = run.get(target, probe)
        if figures is None:
            continue
        p50, p99 = pick(figures, "p50"), pick(figures, "p99")
        row = [LABELS[target] + _errors(figures), _num(p50 or math.nan), _num(p99 or math.nan)]
        row += [_added(p50, pick(direct, "p50")), _added(p99, pick(direct, "p99"))]
        if passthrough is not None:
            row.append(_added(p50, pick(passthrough, "p50")))
        rows.append(row)
    what = "time to first byte" if first_byte else "latency"
    header = ["target", f"{what} p50 ms", "p99 ms", "added p50 ms (vs direct)", "added p99 ms (vs direct)"]
    if passthrough is not None:
        header.append("p50 ms vs pass-through")
    return _table(header, rows)


def memory_table(run: Run) -> list[str]:
    plain = run.get("ailb-memory", "mem_plain")
    if plain is None:
        return []
    rows = [["without a session" + _errors(plain), _num(plain.p50), _num(plain.p99), "", ""]]
    kinds = (
        ("mem_session", f"with a short session ({SESSIONS} in turn; the whole history is recalled)"),
        ("mem_long", f"with a long session ({LONG_SESSIONS} in turn, filled past the budget; recall by similarity)"),
    )
    for probe, label in kinds:
        figures = run.get("ailb-memory", probe)
        if figures is not None:
            row = [label + _errors(figures), _num(figures.p50), _num(figures.p99)]
            rows.append([*row, _added(figures.p50, plain.p50), _added(figures.p99, plain.p99)])
    header = [f"memory-enabled AILB at {run.rates.memory:g} req/s", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms"]
    return _table(header, rows)


@dataclass(frozen=True)
class Goal:
    text: str
    measured: Callable[[Run], tuple[str, bool] | None]


def _fraction(run: Run, target: str, base: str, probe: str = "tput_plain") -> float | None:
    value, reference = run.get(target, probe), run.get(base, probe)
    if value is None or reference is None or reference.rps == 0:
        return None
    return value.rps / reference.rps


def _diff(run: Run, target: str, base: str, probe: str, attr: str) -> float | None:
    value, reference = run.get(target, probe), run.get(base, probe)
    if value is None or reference is None:
        return None
    diff: float = getattr(value, attr) - getattr(reference, attr)
    return diff


def _at_least(value: float | None, goal: float, unit: str = "×") -> tuple[str, bool] | None:
    return None if value is None else (f"{value:.2f}{unit}", value >= goal)


def _at_most(value: float | None, goal: float) -> tuple[str, bool] | None:
    return None if value is None else (f"{value:+.2f} ms", value <= goal)


def _router(run: Run) -> tuple[str, bool] | None:
    """Throughput judged loaded at once (issue 13's plain probe) when the pairs ran, else one after the other."""
    share, p50 = _fraction(run, "ailb-router", "ailb"), _diff(run, "ailb-router", "ailb", "lat_plain", "p50")
    together = run.pairs.get(("ailb-router", "ailb"), {}).get("issue_plain")
    if share is None or p50 is None:
        return None
    throughput = f"{share:.2f}× throughput"
    if together:
        share, throughput = (
            statistics.median(together),
            f"throughput loaded at once {_spread(together)} (issue 13's probe)",
        )
    return f"{throughput}, {p50:+.2f} ms p50", share >= 0.95 and p50 <= 0.1


def _cpu_share(run: Run, target: str, base: str, probe: str = "tput_plain") -> float | None:
    """How much of ``base``'s throughput ``target`` would reach on CPU time alone (base CPU/req ÷ target's)."""
    value, reference = run.get(target, probe), run.get(base, probe)
    if value is None or reference is None or value.cpu_us == 0:
        return None
    return reference.cpu_us / value.cpu_us


def _with_cpu(outcome: tuple[str, bool] | None, cpu_share: float | None) -> tuple[str, bool] | None:
    if outcome is None or cpu_share is None:
        return outcome
    return f"{outcome[0]} (by CPU time per request: {cpu_share:.2f}×)", outcome[1]


def _throughput_share(run: Run) -> tuple[str, bool] | None:
    outcome = _at_least(_fraction(run, "ailb", "passthrough"), 0.5)
    return _with_cpu(outcome, _cpu_share(run, "ailb", "passthrough"))


def _added_p50(run: Run) -> tuple[str, bool] | None:
    return _at_most(_diff(run, "ailb", "direct", "lat_plain", "p50"), 1.5)


def _added_ttfb(run: Run) -> tuple[str, bool] | None:
    return _at_most(_diff(run, "ailb", "direct", "lat_stream", "ttfb_p50"), 1.0)


def _vs_litellm(run: Run) -> tuple[str, bool] | None:
    return _with_cpu(_at_least(_fraction(run, "ailb", "litellm"), 25), _cpu_share(run, "ailb", "litellm"))


def _memory_throughput(run: Run) -> tuple[str, bool] | None:
    return _at_least(_fraction(run, "ailb-memory", "ailb"), 0.95)


def _memory_p50(run: Run) -> tuple[str, bool] | None:
    plain = run.get("ailb-memory", "mem_plain")
    found = [(kind, run.get("ailb-memory", probe)) for kind, probe in (("short", "mem_session"), ("long", "mem_long"))]
    added = [(kind, figures.p50 - plain.p50) for kind, figures in found if figures is not None and plain is not None]
    if not added:
        return None
    text = ", ".join(f"{kind} sessions {value:+.2f} ms" for kind, value in added)
    return text, all(value < 20.0 for _, value in added)


GOALS = [
    Goal("AILB throughput ≥ 50% of the pass-through's (c64, plain)", _throughput_share),
    Goal("AILB added p50 ≤ 1.5 ms (plain, at the fixed rate)", _added_p50),
    Goal("AILB added time to first byte ≤ 1 ms (streamed, p50, at the fixed rate)", _added_ttfb),
    Goal("AILB throughput ≥ 25× LiteLLM's (c64, plain)", _vs_litellm),
    Goal("Router: two deployments cost nothing measurable (≥ 0.95× throughput, ≤ +0.1 ms p50)", _router),
    Goal("Memory: a request with a session adds < 20 ms p50", _memory_p50),
    Goal("Memory enabled: no loss of throughput without a session (≥ 0.95× AILB, c64)", _memory_throughput),
]


def judged(together: tuple[str, bool] | None, apart: tuple[str, bool] | None) -> tuple[str, bool] | None:
    """A goal judged by both servers loaded at once when that ran, the figures measured one after the other beside
    it; by those alone otherwise."""
    if together is None:
        return apart
    beside = f"; one after the other: {apart[0]}" if apart is not None else ""
    return f"both loaded at once: {together[0]}{beside}", together[1]


def spread_at_least(ratios: list[float] | None, goal: float) -> tuple[str, bool] | None:
    """The runs' median ratio and range, and whether the median meets ``goal`` (None without runs)."""
    return (_spread(ratios), statistics.median(ratios) >= goal) if ratios else None


def _issue_throughput(target: str, probe: str) -> Callable[[Run], tuple[str, bool] | None]:
    def measured(run: Run) -> tuple[str, bool] | None:
        apart = _with_cpu(
            _at_least(_fraction(run, target, YARDSTICK, probe), 0.80), _cpu_share(run, target, YARDSTICK, probe)
        )
        return judged(spread_at_least(run.pairs.get((target, YARDSTICK), {}).get(probe), 0.80), apart)

    return measured


def _issue_ttft(target: str) -> Callable[[Run], tuple[str, bool] | None]:
    def measured(run: Run) -> tuple[str, bool] | None:
        ours, yardstick = run.get(target, "issue_ttft"), run.get(YARDSTICK, "issue_ttft")
        if ours is None or yardstick is None:
            return None
        beyond = ours.first_content_p50 - yardstick.first_content_p50
        return f"{beyond:+.2f} ms beyond the pass-through's added time", beyond <= 0.5

    return measured


def _one_after_the_other(run: Run, two: str, one: str) -> tuple[str, bool] | None:
    plain = _fraction(run, two, one, "issue_plain")
    stream = _fraction(run, two, one, "issue_stream")
    if plain is None or stream is None:
        return None
    cpu = _cpu_share(run, two, one, "issue_plain")
    by_cpu = f" (by CPU time per request: {cpu:.2f}×)" if cpu is not None else ""
    return f"plain {plain:.2f}×{by_cpu}, streamed {stream:.2f}×", min(plain, stream) >= 0.95


def _spread(values: list[float]) -> str:
    """The median ratio of the runs, and their range."""
    return f"{statistics.median(values):.2f}× ({min(values):.2f}–{max(values):.2f} over {len(values)} runs)"


def _at_once(ratios: PairRatios) -> tuple[str, bool] | None:
    plain, stream = ratios.get("issue_plain"), ratios.get("issue_stream")
    if not plain or not stream:
        return None
    text = f"plain {_spread(plain)}, streamed {_spread(stream)}"
    return text, min(statistics.median(plain), statistics.median(stream)) >= 0.95


def _issue_router(two: str, one: str) -> Callable[[Run], tuple[str, bool] | None]:
    def measured(run: Run) -> tuple[str, bool] | None:
        return judged(_at_once(run.pairs.get((two, one), {})), _one_after_the_other(run, two, one))

    return measured


COMPILED = "compiled (`pip install .`, the image)"
ISSUE_GOALS = [
    Goal(
        "plain req/s, c64, ~2 KB body, router choosing between two deployments, metrics on: ≥ 0.80× the pass-through",
        _issue_throughput("ailb-router", "issue_plain"),
    ),
    Goal("the same, one deployment: ≥ 0.80×", _issue_throughput("ailb", "issue_plain")),
    Goal(f"the same, {COMPILED}, router choosing", _issue_throughput("ailb-router-compiled", "issue_plain")),
    Goal(f"the same, {COMPILED}, one deployment", _issue_throughput("ailb-compiled", "issue_plain")),
    Goal(
        "streamed req/s, c64, 25 events, no delay (router choosing): ≥ 0.80×",
        _issue_throughput("ailb-router", "issue_stream"),
    ),
    Goal("the same, one deployment: ≥ 0.80×", _issue_throughput("ailb", "issue_stream")),
    Goal(f"the same, {COMPILED}, router choosing", _issue_throughput("ailb-router-compiled", "issue_stream")),
    Goal(f"the same, {COMPILED}, one deployment", _issue_throughput("ailb-compiled", "issue_stream")),
    Goal(
        "time to the first content token, c1, events 1 ms apart: within +0.5 ms of what the pass-through adds",
        _issue_ttft("ailb"),
    ),
    Goal("the same, router choosing", _issue_ttft("ailb-router")),
    Goal(f"the same, {COMPILED}", _issue_ttft("ailb-compiled")),
    Goal("two deployments (router choosing) vs one: ≥ 0.95× throughput", _issue_router("ailb-router", "ailb")),
    Goal(f"the same, {COMPILED}", _issue_router("ailb-router-compiled", "ailb-compiled")),
]


def pairs_table(run: Run) -> list[str]:
    """Each pair loaded at once: the target's throughput ÷ the base's, median and range of the runs."""
    rows = [
        "| target | against | plain req/s, c64 | streamed req/s, c64 |",
        "|---|---|---|---|",
    ]
    for target, base in PAIRS:
        ratios = run.pairs.get((target, base))
        if ratios:
            cells = [_spread(ratios[key]) if ratios.get(key) else "–" for key in ("issue_plain", "issue_stream")]
            rows.append(f"| {LABELS[target]} | {LABELS[base]} | {cells[0]} | {cells[1]} |")
    return rows if len(rows) > 2 else []


def issue_goals_table(run: Run) -> list[str]:
    return _goal_rows(run, ISSUE_GOALS)


def issue_table(run: Run) -> list[str]:
    """Every target on issue 13's probes: throughput (and its share of the yardstick's) and first content."""
    direct, yardstick = run.get("direct", "issue_ttft"), run.get(YARDSTICK, "issue_ttft")
    rows = []
    for target, label in LABELS.items():
        plain, stream, ttft = (run.get(target, p) for p in ("issue_plain", "issue_stream", "issue_ttft"))
        if plain is None:
            continue
        row = [label + _errors(plain), _rate(plain.rps), _ratio(plain.rps, _rps(run.get(YARDSTICK, "issue_plain")))]
        row.append(_rate(plain.cpu_us))
        if stream is not None:
            pt_stream = run.get(YARDSTICK, "issue_stream")
            row += [_rate(stream.rps) + _errors(stream), _ratio(stream.rps, _rps(pt_stream)), _rate(stream.cpu_us)]
        else:
            row += ["–", "–", "–"]
        if ttft is not None:
            first = ttft.first_content_p50
            row += [_num(first), _added(first, direct.first_content_p50 if direct else None)]
            row.append(_added(first, yardstick.first_content_p50 if yardstick else None))
        else:
            row += ["–", "–", "–"]
        rows.append(row)
    header = ["target", "plain req/s", "vs pass-through", "CPU µs/req", "streamed req/s", "vs pass-through"]
    header += ["CPU µs/req", "first content p50 ms (c1)", "added vs direct", "vs pass-through"]
    return _table(header, rows)


def goals_table(run: Run) -> list[str]:
    return _goal_rows(run, GOALS)


def _goal_rows(run: Run, goals: list[Goal]) -> list[str]:
    rows = []
    for goal in goals:
        outcome = goal.measured(run)
        if outcome is None:
            rows.append([goal.text, "not measured", "–"])
        else:
            rows.append([goal.text, outcome[0], "yes" if outcome[1] else "**no**"])
    return _table(["goal", "measured", "met"], rows)


def asgi_verdict(run: Run) -> list[str]:
    share = _fraction(run, "ailb-granian", "ailb")
    p50 = _diff(run, "ailb-granian", "ailb", "lat_plain", "p50")
    ttfb = _diff(run, "ailb-granian", "ailb", "lat_stream", "ttfb_p50")
    if share is None or p50 is None:
        return ["granian was not measured in this run."]
    stream = _fraction(run, "ailb-granian", "ailb", "tput_stream")
    cpu = _cpu_share(run, "ailb-granian", "ailb")
    parts = [f"{share:.2f}× plain throughput"]
    if cpu is not None:
        parts.append(f"{cpu:.2f}× by CPU time per request")
    if stream is not None:
        parts.append(f"{stream:.2f}× streamed throughput")
    parts.append(f"{p50:+.2f} ms p50 at {run.rates.latency:g} req/s")
    if ttfb is not None:
        parts.append(f"{ttfb:+.2f} ms time to first byte")
    return ["granian against uvicorn (the same AILB app on the same CPU): " + ", ".join(parts) + "."]


def _section(title: str, lines: list[str]) -> list[str]:
    return [f"## {title}", "", *lines, ""] if lines else []


def render(run: Run) -> str:
    out = ["# AILB benchmark results", "", "Produced by:", "", "```", run.command, "```", ""]
    out += _section("Machine", [f"- {line}" for line in run.machine])
    out += _section("Issue 13: the performance goals", issue_goals_table(run))
    issue = (
        "~2 KB request (a system message and three turns); throughput at concurrency 64, plain and streamed "
        "(25 events, no delay); time to the first content token at concurrency 1 (a role-only event first, then "
        "content, events 1 ms apart). The pass-through is the raw-ASGI one."
    )
    out += _section("Issue 13's probes", [issue, "", *issue_table(run)])
    at_once = (
        "Issue 13's throughput probes, both servers of a pair loaded at the same time on the server's CPU "
        "(`bench/pairs.py`): the target's requests per second ÷ the other's."
    )
    if pairs := pairs_table(run):
        out += _section("Loaded at once", [at_once, "", *pairs])
    if run.instructions:
        out += [*run.instructions.splitlines(), ""]
    out += _section("Earlier goals", goals_table(run))
    out += _section("Throughput at concurrency 64 (closed loop)", throughput_table(run))
    main_targets = ["direct", "passthrough", "ailb", "ailb-router", "ailb-granian"]
    rate = f"{run.rates.latency:g} req/s"
    plain = latency_table(run, "lat_plain", main_targets, first_byte=False)
    out += _section(f"Latency at a fixed {rate} (open loop), plain requests", plain)
    streamed = latency_table(run, "lat_stream", main_targets, first_byte=True)
    out += _section(f"Time to first byte at a fixed {rate} (open loop), streamed requests", streamed)
    low_targets = ["direct", "passthrough", "ailb", "litellm"]
    if any(run.get(t, "low_plain") for t in low_targets):
        low = f"{run.rates.low:g} req/s"
        plain = latency_table(run, "low_plain", low_targets, first_byte=False)
        out += _section(f"At {low}, a rate LiteLLM sustains: plain latency", plain)
        streamed = latency_table(run, "low_stream", low_targets, first_byte=True)
        out += _section(f"At {low}: streamed, time to first byte", streamed)
    out += _section("Memory", memory_table(run))
    out += _section("ASGI server", asgi_verdict(run))
    out += _section("Not measured", [f"- {LABELS[t]}: {why}" for t, why in run.skipped.items()])
    out += _section("Method", [f"- {line}" for line in run.method + run.notes])
    return "\n".join(out)
