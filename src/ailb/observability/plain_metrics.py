"""Counters and histograms kept in plain Python numbers, exposed as Prometheus families when scraped.

The Prometheus client's own metric objects take a lock and check observability on every update (about ten
locked updates per request). In one process every per-request update runs on the event loop thread, so the
values need no lock: an update is an attribute add, a histogram observation one ``bisect`` and two adds.
Each family is a collector that yields, on scrape, exactly the samples the client's ``Counter`` or
``Histogram`` of the same name, help, labels and buckets would: ``_total`` (or ``_bucket``/``_count``/``_sum``),
then ``_created``, children in the order they were first used.

With several workers the values must be in the shared files a scrape of any worker reads, so there
``ailb.observability.metrics`` keeps the client's objects (``multiprocess.active()``).

Updates come from the event loop only; a scrape from another thread reads a consistent list of children
(copied in one C call) and values that are at worst one update old.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import Generic, TypeVar

from prometheus_client import metrics as client_metrics
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample
from prometheus_client.utils import INF, floatToGoString


def _created_series() -> bool:
    """Whether ``_created`` samples are exported (``PROMETHEUS_DISABLE_CREATED_SERIES`` turns them off)."""
    return bool(getattr(client_metrics, "_use_created", True))


class CounterValue:
    """One label set's counter: what ``Counter.labels(...)`` returns, without a lock."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self.value += amount


class HistogramValue:
    """One label set's histogram: per-bucket counts (not cumulative, as the client keeps them) and the sum."""

    __slots__ = ("_bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        # The first bucket whose upper bound is >= amount, as the client's linear search finds it.
        self.counts[bisect_left(self._bounds, amount)] += 1
        self.sum += amount


Child = TypeVar("Child", CounterValue, HistogramValue)


class _Family(Collector, Generic[Child]):
    """A labelled family: children by label values, created on first use (``labels``) and kept."""

    _type = ""

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], Child] = {}

    @abstractmethod
    def _new_child(self) -> Child: ...

    @abstractmethod
    def _samples(self, labels: dict[str, str], child: Child, created: bool) -> Iterator[Sample]: ...

    def labels(self, *labelvalues: str) -> Child:
        if len(labelvalues) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {labelvalues!r}")
        child = self._children.get(labelvalues)
        if child is None:
            child = self._children[labelvalues] = self._new_child()
        return child

    def describe(self) -> Iterable[Metric]:
        return [Metric(self.name, self.documentation, self._type)]

    def collect(self) -> Iterable[Metric]:
        metric = Metric(self.name, self.documentation, self._type)
        created = _created_series()
        for labelvalues, child in list(self._children.items()):
            metric.samples.extend(self._samples(dict(zip(self.labelnames, labelvalues, strict=True)), child, created))
        return [metric]


class PlainCounter(_Family[CounterValue]):
    """``prometheus_client.Counter``'s exposition from plain numbers (same arguments)."""

    _type = "counter"

    def __init__(
        self, name: str, documentation: str, labelnames: Iterable[str] = (), *, registry: CollectorRegistry
    ) -> None:
        super().__init__(name, documentation, labelnames)
        if not self.labelnames:
            self.labels()
        registry.register(self)

    def _new_child(self) -> CounterValue:
        return CounterValue()

    def _samples(self, labels: dict[str, str], child: CounterValue, created: bool) -> Iterator[Sample]:
        yield Sample(self.name + "_total", labels, child.value, None, None)
        if created:
            yield Sample(self.name + "_created", labels, child.created, None, None)


class PlainHistogram(_Family[HistogramValue]):
    """``prometheus_client.Histogram``'s exposition from plain numbers (same arguments)."""

    _type = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        super().__init__(name, documentation, labelnames)
        bounds = [float(bound) for bound in buckets]
        if bounds != sorted(bounds) or not bounds:
            raise ValueError(f"{name}: buckets must be given in ascending order")
        if bounds[-1] != INF:
            bounds.append(INF)
        self.bounds = tuple(bounds)
        self._le = tuple(floatToGoString(bound) for bound in bounds)  # type: ignore[no-untyped-call]
        if not self.labelnames:
            self.labels()
        registry.register(self)

    def _new_child(self) -> HistogramValue:
        return HistogramValue(self.bounds)

    def _samples(self, labels: dict[str, str], child: HistogramValue, created: bool) -> Iterator[Sample]:
        total = 0.0
        for le, count in zip(self._le, list(child.counts), strict=True):
            total += count
            yield Sample(self.name + "_bucket", {**labels, "le": le}, total, None, None)
        yield Sample(self.name + "_count", labels, total, None, None)
        if self.bounds[0] >= 0:
            yield Sample(self.name + "_sum", labels, child.sum, None, None)
        if created:
            yield Sample(self.name + "_created", labels, child.created, None, None)
