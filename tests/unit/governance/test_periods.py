from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ailb.governance.periods import parse_period


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


NOW = ts("2025-06-18 15:42:07")  # a Wednesday


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("1h", "2025-06-18 15:00", "2025-06-18 16:00"),
        ("1d", "2025-06-18 00:00", "2025-06-19 00:00"),
        ("7d", "2025-06-16 00:00", "2025-06-23 00:00"),  # weeks start on Mondays
        ("1w", "2025-06-16 00:00", "2025-06-23 00:00"),
        ("1mo", "2025-06-01 00:00", "2025-07-01 00:00"),
        ("3mo", "2025-04-01 00:00", "2025-07-01 00:00"),  # quarters
        ("12mo", "2025-01-01 00:00", "2026-01-01 00:00"),
    ],
)
def test_the_period_holding_now(spec: str, start: str, end: str) -> None:
    bounds = parse_period(spec).bounds(NOW)
    assert (iso(bounds[0]), iso(bounds[1])) == (start, end)


def test_day_blocks_are_contiguous_and_hold_now() -> None:
    period = parse_period("30d")
    start, end = period.bounds(NOW)
    assert end - start == 30 * 86400 and start <= NOW < end
    assert period.bounds(end) == (end, end + 30 * 86400)
    assert period.bounds(end - 0.001) == (start, end)


def test_december_rolls_into_the_next_year() -> None:
    start, end = parse_period("1mo").bounds(ts("2025-12-31 23:59:59"))
    assert (iso(start), iso(end)) == ("2025-12-01 00:00", "2026-01-01 00:00")


@pytest.mark.parametrize("spec", ["", "30", "d", "0d", "1m", "1y", "-1d", "1.5d", "30 days"])
def test_bad_periods_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="30d or 1mo"):
        parse_period(spec)


def test_the_text_is_normalised() -> None:
    assert parse_period(" 30d ").text == "30d"
