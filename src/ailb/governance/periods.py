"""Budget periods: ``1h``, ``1d``, ``7d``, ``30d``, ``2w``, ``1mo`` … and where the current one starts and ends.

Periods are fixed blocks of UTC time, the same on every replica without shared state:

- hours, days and weeks (``h``, ``d``, ``w``) are counted in blocks from Monday 1970-01-05 00:00 UTC, so ``1h``
  resets on the hour, ``1d`` at midnight UTC, ``7d``/``1w`` on Mondays, and ``30d`` every 30 days;
- months (``mo``) are calendar months: ``1mo`` resets on the 1st at 00:00 UTC, ``3mo`` every quarter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_SPEC = re.compile(r"^([1-9][0-9]{0,3})(h|d|w|mo)$")
_UNIT_SECONDS = {"h": 3600, "d": 86400, "w": 7 * 86400}
MONDAY = 4 * 86400  # 1970-01-05 00:00 UTC, the first Monday after the epoch
PERIOD_SYNTAX = "a count and a unit: h (hours), d (days), w (weeks) or mo (calendar months), e.g. 30d or 1mo"


@dataclass(frozen=True, slots=True)
class BudgetPeriod:
    text: str  # as written in the configuration, e.g. "30d"
    seconds: int = 0  # the block length for h/d/w, else 0
    months: int = 0  # the block length for mo, else 0

    def bounds(self, now: float) -> tuple[float, float]:
        """Unix times of the start and end of the period holding ``now``."""
        if self.seconds:
            start = MONDAY + ((now - MONDAY) // self.seconds) * self.seconds
            return start, start + self.seconds
        moment = datetime.fromtimestamp(now, UTC)
        index = (moment.year - 1970) * 12 + moment.month - 1
        first = index - index % self.months
        return _month_start(first), _month_start(first + self.months)


def parse_period(text: str) -> BudgetPeriod:
    """``"30d"`` → a 30-day period; ``ValueError`` for anything else."""
    match = _SPEC.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"expected {PERIOD_SYNTAX}, got {text!r}")
    count, unit = int(match.group(1)), match.group(2)
    if unit == "mo":
        return BudgetPeriod(f"{count}mo", months=count)
    return BudgetPeriod(f"{count}{unit}", seconds=count * _UNIT_SECONDS[unit])


def _month_start(index: int) -> float:
    return datetime(1970 + index // 12, index % 12 + 1, 1, tzinfo=UTC).timestamp()


DEFAULT_PERIOD = parse_period("30d")
