"""The plain families render exactly what the Prometheus client's ``Counter`` and ``Histogram`` render for the
same updates (names, help, types, labels, buckets, values and creation times)."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from ailb.observability.plain_metrics import PlainCounter, PlainHistogram

BUCKETS = (0.01, 0.025, 0.1, 1, 30)
OBSERVED = (0.0, 0.01, 0.010000001, 0.025, 0.05, 1.0, 29.9, 30.0, 31.0, 1e9, -1.0)


def _update(counter: object, labelled: object, histogram: object, unlabelled: object) -> None:
    for amount in (1, 2.5, 0, 1e-9):
        counter.labels("a", "x").inc(amount)  # type: ignore[attr-defined]
    counter.labels("b", "x").inc()  # type: ignore[attr-defined]
    for amount in OBSERVED:
        histogram.labels("m").observe(amount)  # type: ignore[attr-defined]
        unlabelled.observe(amount * 2)  # type: ignore[attr-defined]
    histogram.labels("n").observe(0.2)  # type: ignore[attr-defined]
    labelled.labels("quiet")  # type: ignore[attr-defined]  # a child never updated is still exported


def test_plain_families_render_as_the_clients_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.5)
    texts = []
    for counter_type, histogram_type in ((Counter, Histogram), (PlainCounter, PlainHistogram)):
        registry = CollectorRegistry(auto_describe=True)
        counter = counter_type("things", "Things counted", ["kind", "shape"], registry=registry)
        labelled = counter_type("quiet", "Never counted", ["kind"], registry=registry)
        histogram = histogram_type("seconds", "Time taken", ["model"], buckets=BUCKETS, registry=registry)
        unlabelled = histogram_type("overhead", "Time of our own", buckets=BUCKETS, registry=registry)
        target = unlabelled if histogram_type is Histogram else unlabelled.labels()
        _update(counter, labelled, histogram, target)
        texts.append(generate_latest(registry).decode())
    assert 'things_total{kind="a",shape="x"} 3.500000001' in texts[0]
    assert texts[1] == texts[0]


def test_plain_families_refuse_what_the_client_refuses() -> None:
    registry = CollectorRegistry(auto_describe=True)
    counter = PlainCounter("things", "Things counted", ["kind"], registry=registry)
    with pytest.raises(ValueError, match="non-negative"):
        counter.labels("a").inc(-1)
    with pytest.raises(ValueError, match="labels"):
        counter.labels("a", "b")
    with pytest.raises(ValueError, match="ascending"):
        PlainHistogram("h", "H", buckets=(1, 0.5), registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        PlainCounter("things", "Again", registry=registry)
