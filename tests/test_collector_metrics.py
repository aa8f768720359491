"""The collector's single-process metrics expose exactly what prometheus_client's own classes would."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from collector import metrics as m
from slo import conventions as c

Step = Callable[[m.CollectorMetrics], None]


def shared(registry: CollectorRegistry) -> m.CollectorMetrics:
    """The prometheus_client-backed variant (what multiprocess mode uses), in memory."""
    metrics = m.CollectorMetrics.__new__(m.CollectorMetrics)
    metrics._shared(registry, "kafka")
    return metrics


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples
            if not s.name.endswith("_created")}  # creation times differ by construction


def accept(n: int) -> Step:
    def step(x: m.CollectorMetrics) -> None:
        x.beacons[c.OUTCOME_ACCEPTED].inc()
        x.events[c.OUTCOME_ACCEPTED].inc(n)
    return step


def latency(seconds: float) -> Step:
    def step(x: m.CollectorMetrics) -> None:
        x.request_duration.observe(seconds)
        x.export_duration.observe(seconds / 2)
    return step


def refuse(reason: str) -> Step:
    def step(x: m.CollectorMetrics) -> None:
        x.refused[reason].inc()
        x.beacons[c.OUTCOME_REFUSED].inc()
    return step


def fail(x: m.CollectorMetrics) -> None:
    x.export_failures.inc()
    x.beacons[c.OUTCOME_FAILED].inc()


@pytest.mark.parametrize("steps", [
    pytest.param([], id="a fresh collector exposes every series at zero"),
    pytest.param([accept(20), accept(3), latency(0.003)], id="accepted beacons count beacons and events"),
    pytest.param([latency(0.001), latency(0.0005), latency(5.0)],
                 id="an observation equal to a bucket bound falls in that bucket"),
    pytest.param([latency(0.0), latency(7.5), latency(1e-9)],
                 id="zero and values past the last bound land where prometheus_client puts them"),
    pytest.param([refuse(c.REASON_TOO_LARGE), refuse(c.REASON_INVALID), fail, fail],
                 id="refusals by reason and export failures are counted"),
])
def test_local_metrics_expose_the_same_samples_as_prometheus_client(steps: list[Step]) -> None:
    ours_registry, theirs_registry = CollectorRegistry(), CollectorRegistry()
    ours = m.CollectorMetrics(ours_registry, exporter="kafka")
    theirs = shared(theirs_registry)
    assert isinstance(ours.export_failures, m.LocalCount)  # really the local path
    for step in steps:
        step(ours)
        step(theirs)
    assert samples(ours_registry) == samples(theirs_registry)


def test_get_sample_value_reads_the_current_local_value() -> None:
    registry = CollectorRegistry()
    metrics = m.CollectorMetrics(registry)
    metrics.events[c.OUTCOME_ACCEPTED].inc(20)
    assert registry.get_sample_value(c.METRIC_COLLECTOR_EVENTS, {c.LABEL_OUTCOME: c.OUTCOME_ACCEPTED}) == 20
    metrics.events[c.OUTCOME_ACCEPTED].inc(2)
    assert registry.get_sample_value(c.METRIC_COLLECTOR_EVENTS, {c.LABEL_OUTCOME: c.OUTCOME_ACCEPTED}) == 22
