"""The collector's self-telemetry: accepted/refused/failed beacons and events, latencies.

Use one :class:`CollectorMetrics` per app, on the registry ``/metrics``
serves. Label children are bound once here so the hot path does no label
lookups. With several worker processes set ``PROMETHEUS_MULTIPROC_DIR``
before starting them; :func:`exposition` then merges every process's values.

>>> from prometheus_client import CollectorRegistry
>>> m = CollectorMetrics(CollectorRegistry())
>>> m.refused[c.REASON_TOO_LARGE].inc()
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as mp

from slo import conventions as c

# Request latencies are sub-millisecond to tens of ms; exports wait for acks.
_REQUEST_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class CollectorMetrics:
    """Counters and histograms of one collector, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry, exporter: str = "unknown") -> None:
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
