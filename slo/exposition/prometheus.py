"""Prometheus exposition of stage-2 snapshots: a prometheus_client custom collector.

Use :class:`EngineCollector` wherever ``/metrics`` is served (the Faust worker
and the embedded engine), registered into the registry that endpoint serves,
so both transports expose the same names (all from ``slo/conventions.py``):

- ``streamslo_latency_seconds`` histogram {region, sli, kind}, buckets
  ``Spec.histogram_buckets_s`` (every SLO threshold is an edge), for
  ``ttff``, ``interaction_rtt`` and ``live_latency``;
- ``streamslo_latency_quantile_seconds`` gauge {region, sli, kind, quantile, window};
- the playback outcomes {region, kind}: ``streamslo_playback_attempts_total``
  (first frames + fatal errors + exits before start), ``..._errors_total``
  (fatal), ``..._exits_before_start_total``, ``..._warnings_total``,
  ``..._business_errors_total`` (neither attempts nor errors);
- rebuffering {region, kind}: ``streamslo_rebuffer_seconds_total`` (stall
  time), ``streamslo_played_seconds_total``, ``streamslo_rebuffer_events_total``;
- ``streamslo_sli_ratio`` gauge {region, slo, window}: bad / total of every
  ratio and time_ratio SLO over each quantile window and the period (absent
  without events): the exact rebuffering ratio is read here;
- ``streamslo_burn_rate`` gauge {region, slo, window} (tier windows and the period);
- ``streamslo_error_budget_remaining_ratio`` gauge {region, slo};
- ``streamslo_trigger_condition`` gauge {region, trigger}: 1 while a trigger's
  condition holds right now (alert rules add the trigger's ``for:``);
- ``streamslo_stream_freshness_seconds`` gauge {region}.

The spec's dimension (``Spec.dimension``, e.g. ``cdn``) is one more label,
named after it, on the histogram and counters of the SLIs that opt in: one
series per allow-listed value and ``other``. Quantiles, ratios, burn rates and
budgets are per region (the SLO is the region's; the dimension is a
breakdown), so the series count stays regions x (values + 1) x SLIs.

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
from slo.stage2 import RegionSnapshot, SeriesSnapshot, Snapshot

__all__ = ["EngineCollector"]

_REGION_SLI_KIND = [c.LABEL_REGION, c.LABEL_SLI, c.LABEL_KIND]


class EngineCollector(Collector):
    """Yields the engine's metrics from ``source()`` (a fresh :class:`Snapshot`) at every scrape."""

    def __init__(self, source: Callable[[], Snapshot], spec: Spec) -> None:
        self._source = source
        self._spec = spec
        self._le = [le_label(edge) for edge in spec.histogram_buckets_s]
        self._dim_label = spec.dimension.name if spec.dimension is not None else ""

    def describe(self) -> Iterator[Metric]:
        """Names only, so registering never calls ``source`` (the engine may not run yet)."""
        yield from _Families().all()

    def collect(self) -> Iterator[Metric]:
        families = _Families()
        snapshot = self._source()
        for name in sorted(snapshot.regions):
            self._add_region(families, snapshot.regions[name])
        yield from families.all()

    def _labels(self, region: str, series: SeriesSnapshot, *, sli: bool) -> dict[str, str]:
        """{region, [sli,] kind}, plus the dimension label on a series of an opted-in SLI."""
        labels = {c.LABEL_REGION: region}
        if sli:
            labels[c.LABEL_SLI] = series.sli
        labels[c.LABEL_KIND] = series.kind
        if series.dim:
            labels[self._dim_label] = series.dim
        return labels

    def _add_region(self, f: _Families, region: RegionSnapshot) -> None:
        name = region.region
        for series in region.by_dim.values():
            if series.sli == c.SLI_ERRORS:
                labels = self._labels(name, series, sli=False)
                for family, total in (
                    (f.attempts, series.attempts),
                    (f.errors, series.errors),
                    (f.exits, series.exits),
                    (f.warnings, series.warnings),
                    (f.business, series.business),
                ):
                    _count(family, labels, total)
            elif series.sli == c.SLI_REBUFFERING:
                labels = self._labels(name, series, sli=False)
                _count(f.rebuffer_seconds, labels, series.stall_s)
                _count(f.played_seconds, labels, series.played_s)
                _count(f.rebuffer_events, labels, series.stalls)
            else:
                buckets = [*zip(self._le, series.le_counts, strict=True), ("+Inf", series.count)]
                _histogram(f.latency, self._labels(name, series, sli=True), buckets, series.sum_s)
        for (sli, kind), series in region.series.items():
            for window_s, values in sorted(series.quantiles.items()):
                window = format_duration(window_s)
                for q, value in sorted(values.items()):
                    f.quantile.add_metric([name, sli, kind, quantile_label(q), window], value)
        for slo in region.slos.values():
            for window_s, ratio in sorted(slo.ratios.items()):
                f.ratio.add_metric([name, slo.slo, format_duration(window_s)], ratio)
            for window_s, rate in sorted(slo.burn_rates.items()):
                f.burn.add_metric([name, slo.slo, format_duration(window_s)], rate)
            f.remaining.add_metric([name, slo.slo], slo.budget_remaining)
        for trigger_name, state in region.triggers.items():
            f.trigger.add_metric([name, trigger_name], 1.0 if state.condition else 0.0)
        if region.freshness_s is not None:
            f.freshness.add_metric([name], region.freshness_s)


def _count(family: CounterMetricFamily, labels: dict[str, str], value: float) -> None:
    """One counter sample; labels by name, since opted-in series carry one label more."""
    family.add_sample(family.name + "_total", labels, value)


def _histogram(
    family: HistogramMetricFamily, labels: dict[str, str], buckets: list[tuple[str, int]], sum_s: float
) -> None:
    """One histogram's samples (buckets sorted, ``+Inf`` last); labels by name, as :func:`_count`."""
    for le, value in buckets:
        family.add_sample(family.name + "_bucket", {**labels, c.LABEL_LE: le}, value)
    family.add_sample(family.name + "_count", labels, buckets[-1][1])
    family.add_sample(family.name + "_sum", labels, sum_s)


class _Families:
    """One empty metric family per exported name, filled per scrape."""

    def __init__(self) -> None:
        region, slo, window, kind = c.LABEL_REGION, c.LABEL_SLO, c.LABEL_WINDOW, c.LABEL_KIND
        self.latency = HistogramMetricFamily(
            c.METRIC_LATENCY, "Event latency (seconds) since start.", labels=_REGION_SLI_KIND
        )
        self.quantile = GaugeMetricFamily(
            c.METRIC_LATENCY_QUANTILE,
            "Latency quantile (seconds) over a rolling window, from a mergeable sketch "
            "(1 % relative accuracy).",
            labels=[*_REGION_SLI_KIND, c.LABEL_QUANTILE, window],
        )

        def counter(name: str, doc: str) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=[region, kind])

        self.attempts = counter(c.METRIC_ATTEMPTS, "Playback attempts (first frames + fatal errors + exits before start).")
        self.errors = counter(c.METRIC_ERRORS, "Fatal playback errors.")
        self.exits = counter(c.METRIC_EXITS_BEFORE_START, "Play attempts the viewer left before the first frame.")
        self.warnings = counter(c.METRIC_WARNINGS, "Non-fatal playback errors (no SLO errors).")
        self.business = counter(
            c.METRIC_BUSINESS_ERRORS,
            "Business refusals (geo-block, entitlement, concurrency limit): neither attempts nor errors.",
        )
        self.rebuffer_seconds = counter(c.METRIC_REBUFFER_SECONDS, "Time spent stalled (rebuffering), seconds.")
        self.played_seconds = counter(c.METRIC_PLAYED_SECONDS, "Time actually played, seconds.")
        self.rebuffer_events = counter(c.METRIC_REBUFFER_EVENTS, "Rebuffering episodes (stalls).")
        self.ratio = GaugeMetricFamily(
            c.METRIC_SLI_RATIO,
            "Bad / total of a ratio or time-ratio SLO over a rolling window, computed in-stream.",
            labels=[region, slo, window],
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
            self.exits,
            self.warnings,
            self.business,
            self.rebuffer_seconds,
            self.played_seconds,
            self.rebuffer_events,
            self.ratio,
            self.burn,
            self.remaining,
            self.trigger,
            self.freshness,
        ]
