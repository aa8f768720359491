"""The collector's self-telemetry: accepted/refused/failed beacons and events, latencies.

Use one :class:`CollectorMetrics` per app, on the registry ``/metrics``
serves. Label children are bound once here so the hot path does no label
lookups. With several worker processes set ``PROMETHEUS_MULTIPROC_DIR``
before starting them; :func:`exposition` then merges every process's values.

In a single process the values are plain Python numbers, read by a
registered collector whenever the registry is collected (``/metrics``,
``get_sample_value``): prometheus_client's own children take a lock on every
``inc()``/``observe()``, 0.9-1.4 us each, four times per request. Only the
event loop's thread updates them. In multiprocess mode the values must live
in prometheus_client's shared files, so its own classes are used.

>>> from prometheus_client import CollectorRegistry
>>> m = CollectorMetrics(CollectorRegistry())
>>> m.refused[c.REASON_TOO_LARGE].inc()
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as mp
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from slo import conventions as c

# Request latencies are sub-millisecond to tens of ms; exports wait for acks.
_REQUEST_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Inc(Protocol):
    def inc(self, amount: float = 1.0) -> None: ...


class Observe(Protocol):
    def observe(self, amount: float) -> None: ...


class CollectorMetrics:
    """Counters and histograms of one collector, registered on ``registry``."""

    beacons: Mapping[str, Inc]
    events: Mapping[str, Inc]
    refused: Mapping[str, Inc]
    request_duration: Observe
    export_duration: Observe
    export_failures: Inc

    def __init__(self, registry: CollectorRegistry, exporter: str = "unknown") -> None:
        if multiprocess_enabled():
            self._shared(registry, exporter)
        else:
            self._local(registry, exporter)

    def _local(self, registry: CollectorRegistry, exporter: str) -> None:
        outcomes = (c.OUTCOME_ACCEPTED, c.OUTCOME_REFUSED, c.OUTCOME_FAILED)
        beacons = {o: LocalCount() for o in outcomes}
        events = {o: LocalCount() for o in outcomes}
        refused = {r: LocalCount() for r in c.REFUSAL_REASONS}
        failures = LocalCount()
        request = LocalHistogram(_REQUEST_BUCKETS)
        export = LocalHistogram(_REQUEST_BUCKETS)
        registry.register(_LocalCollector([
            _counter(c.METRIC_COLLECTOR_BEACONS, "Beacons received, by outcome.",
                     c.LABEL_OUTCOME, beacons),
            _counter(c.METRIC_COLLECTOR_EVENTS, "Events in received beacons, by outcome.",
                     c.LABEL_OUTCOME, events),
            _counter(c.METRIC_COLLECTOR_REFUSED, "Requests refused, by reason.",
                     c.LABEL_REASON, refused),
            _histogram(c.METRIC_COLLECTOR_REQUEST_DURATION, "Time to answer POST /v1/beacons.",
                       {}, request),
            _histogram(c.METRIC_EXPORTER_DURATION, "Time for the exporter to acknowledge a beacon.",
                       {c.LABEL_EXPORTER: exporter}, export),
            _counter(c.METRIC_EXPORTER_FAILURES, "Beacons the exporter could not acknowledge.",
                     c.LABEL_EXPORTER, {exporter: failures}),
        ]))
        self.beacons, self.events, self.refused = beacons, events, refused
        self.request_duration, self.export_duration, self.export_failures = request, export, failures

    def _shared(self, registry: CollectorRegistry, exporter: str) -> None:
        beacons = Counter(
            c.METRIC_COLLECTOR_BEACONS, "Beacons received, by outcome.",
            [c.LABEL_OUTCOME], registry=registry,
        )
        events = Counter(
            c.METRIC_COLLECTOR_EVENTS, "Events in received beacons, by outcome.",
            [c.LABEL_OUTCOME], registry=registry,
        )
        refused = Counter(
            c.METRIC_COLLECTOR_REFUSED, "Requests refused, by reason.",
            [c.LABEL_REASON], registry=registry,
        )
        outcomes = (c.OUTCOME_ACCEPTED, c.OUTCOME_REFUSED, c.OUTCOME_FAILED)
        self.beacons = {o: beacons.labels(o) for o in outcomes}
        self.events = {o: events.labels(o) for o in outcomes}
        # Every reason exists from the start (at 0), so rate() works before the first refusal.
        self.refused = {r: refused.labels(r) for r in c.REFUSAL_REASONS}
        self.request_duration = Histogram(
            c.METRIC_COLLECTOR_REQUEST_DURATION, "Time to answer POST /v1/beacons.",
            buckets=_REQUEST_BUCKETS, registry=registry,
        )
        self.export_duration = Histogram(
            c.METRIC_EXPORTER_DURATION, "Time for the exporter to acknowledge a beacon.",
            [c.LABEL_EXPORTER], buckets=_REQUEST_BUCKETS, registry=registry,
        ).labels(exporter)
        self.export_failures = Counter(
            c.METRIC_EXPORTER_FAILURES, "Beacons the exporter could not acknowledge.",
            [c.LABEL_EXPORTER], registry=registry,
        ).labels(exporter)


class LocalCount:
    """A counter child held as a plain number (single process, one updating thread)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class LocalHistogram:
    """A histogram child held as plain numbers; ``counts[i]`` is per bucket, not cumulative."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # buckets are "<= le"
        self.sum += value


Family = Callable[[], Metric]


def _counter(name: str, doc: str, label: str, children: Mapping[str, LocalCount]) -> Family:
    created = time.time()

    def family() -> Metric:
        f = CounterMetricFamily(name, doc, labels=[label])
        for value, child in children.items():
            f.add_metric([value], child.value, created=created)
        return f

    return family


def _histogram(name: str, doc: str, labels: Mapping[str, str], child: LocalHistogram) -> Family:
    def family() -> Metric:
        f = HistogramMetricFamily(name, doc, labels=list(labels))
        running, buckets = 0, []
        for bound, n in zip((*map(floatToGoString, child.bounds), "+Inf"), child.counts, strict=True):
            running += n
            buckets.append((bound, float(running)))
        f.add_metric(list(labels.values()), buckets, child.sum)
        return f

    return family


class _LocalCollector(Collector):
    """Exposes the local children's current values on every collect of the registry."""

    def __init__(self, families: list[Family]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return [family() for family in self._families]


def multiprocess_enabled() -> bool:
    """True when metrics live in ``$PROMETHEUS_MULTIPROC_DIR`` (several workers)."""
    return bool(os.environ.get(MULTIPROC_ENV))


def exposition(registry: CollectorRegistry) -> bytes:
    """The text exposition of ``registry``, or of all worker processes in multiprocess mode."""
    if multiprocess_enabled():
        merged = CollectorRegistry()
        mp.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
    return generate_latest(registry)


def mark_process_dead(pid: int) -> None:
    """Drop a finished worker's live gauges (no-op outside multiprocess mode)."""
    if multiprocess_enabled():
        mp.mark_process_dead(pid)  # type: ignore[no-untyped-call]
