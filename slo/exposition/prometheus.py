"""Prometheus exposition of stage-2 snapshots: a prometheus_client custom collector.

Use :class:`EngineCollector` wherever ``/metrics`` is served (the Faust worker
and the embedded engine), registered into the registry that endpoint serves,
so both transports expose the same names (all from ``slo/conventions.py``):

- ``streamslo_latency_seconds`` histogram {region, sli, kind}, buckets
  ``Spec.histogram_buckets_s`` (every SLO threshold is an edge);
- ``streamslo_latency_quantile_seconds`` gauge {region, sli, kind, quantile, window};
- ``streamslo_playback_attempts_total`` / ``streamslo_playback_errors_total`` {region, kind};
- ``streamslo_burn_rate`` gauge {region, slo, window} (tier windows and the period);
- ``streamslo_error_budget_remaining_ratio`` gauge {region, slo};
- ``streamslo_trigger_condition`` gauge {region, trigger}: 1 while a trigger's
  condition holds right now (alert rules add the trigger's ``for:``);
- ``streamslo_stream_freshness_seconds`` gauge {region}.

Only regions present in the snapshot are exported, so a worker stops exporting
a region as soon as stage 2 drops it (partition revoked). Objectives use
``Spec.evaluate_kind``; histograms, quantiles and counters carry every kind.

Example::

    registry = CollectorRegistry()
    registry.register(EngineCollector(lambda: stage2.snapshot(time.time()), spec))
    generate_latest(registry)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from slo import conventions as c
from slo.durations import format_duration
from slo.model import Spec
from slo.promql import le_label, quantile_label
from slo.stage2 import RegionSnapshot, Snapshot

__all__ = ["EngineCollector"]

_REGION_SLI_KIND = [c.LABEL_REGION, c.LABEL_SLI, c.LABEL_KIND]


class EngineCollector(Collector):
    """Yields the engine's metrics from ``source()`` (a fresh :class:`Snapshot`) at every scrape."""

    def __init__(self, source: Callable[[], Snapshot], spec: Spec) -> None:
        self._source = source
        self._spec = spec
        self._le = [le_label(edge) for edge in spec.histogram_buckets_s]

    def describe(self) -> Iterator[Metric]:
        """Names only, so registering never calls ``source`` (the engine may not run yet)."""
        yield from _Families().all()

    def collect(self) -> Iterator[Metric]:
        families = _Families()
        snapshot = self._source()
        for name in sorted(snapshot.regions):
            self._add_region(families, snapshot.regions[name])
        yield from families.all()

    def _add_region(self, f: _Families, region: RegionSnapshot) -> None:
        name = region.region
        for (sli, kind), series in region.series.items():
            if sli == c.SLI_ERRORS:
                f.attempts.add_metric([name, kind], series.attempts)
                f.errors.add_metric([name, kind], series.errors)
                continue
            buckets = list(zip(self._le, series.le_counts, strict=True))
            buckets.append(("+Inf", series.count))
            f.latency.add_metric([name, sli, kind], buckets, series.sum_s)
            for window_s, values in sorted(series.quantiles.items()):
                window = format_duration(window_s)
                for q, value in sorted(values.items()):
                    f.quantile.add_metric([name, sli, kind, quantile_label(q), window], value)
        for slo in region.slos.values():
            for window_s, rate in sorted(slo.burn_rates.items()):
                f.burn.add_metric([name, slo.slo, format_duration(window_s)], rate)
            f.remaining.add_metric([name, slo.slo], slo.budget_remaining)
        for trigger_name, state in region.triggers.items():
            f.trigger.add_metric([name, trigger_name], 1.0 if state.condition else 0.0)
        if region.freshness_s is not None:
            f.freshness.add_metric([name], region.freshness_s)


class _Families:
    """One empty metric family per exported name, filled per scrape."""

    def __init__(self) -> None:
        region, slo, window = c.LABEL_REGION, c.LABEL_SLO, c.LABEL_WINDOW
        self.latency = HistogramMetricFamily(
            c.METRIC_LATENCY, "Event latency (seconds) since start.", labels=_REGION_SLI_KIND
        )
        self.quantile = GaugeMetricFamily(
            c.METRIC_LATENCY_QUANTILE,
            "Latency quantile (seconds) over a rolling window, from a mergeable sketch "
            "(1 % relative accuracy).",
            labels=[*_REGION_SLI_KIND, c.LABEL_QUANTILE, window],
        )
        self.attempts = CounterMetricFamily(
            c.METRIC_ATTEMPTS,
            "Playback attempts (first frames + fatal errors).",
            labels=[region, c.LABEL_KIND],
        )
        self.errors = CounterMetricFamily(
            c.METRIC_ERRORS, "Fatal playback errors.", labels=[region, c.LABEL_KIND]
        )
        self.burn = GaugeMetricFamily(
            c.METRIC_BURN_RATE,
            "Error-budget burn rate over a rolling window, computed in-stream.",
            labels=[region, slo, window],
        )
        self.remaining = GaugeMetricFamily(
            c.METRIC_BUDGET_REMAINING,
            "Fraction of the period's error budget left (negative when overspent).",
            labels=[region, slo],
        )
        self.trigger = GaugeMetricFamily(
            c.METRIC_TRIGGER_ACTIVE,
            "1 while an operational trigger's condition holds (before its for: duration).",
            labels=[region, c.LABEL_TRIGGER],
        )
        self.freshness = GaugeMetricFamily(
            c.METRIC_STREAM_FRESHNESS,
            "Seconds between the newest event time stage 2 has seen and now.",
            labels=[region],
        )

    def all(self) -> list[Metric]:
        return [
            self.latency,
            self.quantile,
            self.attempts,
            self.errors,
            self.burn,
            self.remaining,
            self.trigger,
            self.freshness,
        ]
