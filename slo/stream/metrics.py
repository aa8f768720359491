"""Self-metrics of a stream worker: lag, duplicates, late events, throughput counters.

Use :class:`StreamCollector` next to :class:`slo.exposition.EngineCollector` in
the registry ``/metrics`` serves. It reads the worker's live counters at
scrape time (no per-event metric calls on the hot path). Freshness per region
comes from the engine snapshot (``streamslo_stream_freshness_seconds``).

The collector reads a :class:`StreamState`: the Faust worker's
``slo.stream.app.Runtime`` or the embedded ``streamslo.engine.Engine``.

Example::

    registry.register(StreamCollector(runtime, skipped_bundles=runtime.skipped_bundles))
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from slo import conventions as c
from slo.stage1 import Stage1Stats
from slo.stage2 import Stage2


class StreamState(Protocol):
    """What :class:`StreamCollector` reads at scrape time, and nothing else."""

    @property
    def stage2(self) -> Stage2:
        """Stage 2: its ``counters`` (applied, duplicate, late, rejected, overlapping partials)."""

    @property
    def partials_lag(self) -> Mapping[int, int]:
        """Records behind the end of each owned partials partition (stage-2 input)."""

    def stage1_stats(self) -> Stage1Stats:
        """Stage-1 counters, lag per input partition and failed cuts."""


class StreamCollector(Collector):
    """Yields stage-1 and stage-2 self-metrics of ``state``.

    ``skipped_bundles`` is the worker's live count of stage-2 bundles skipped
    by reason (``slo.stream.app.Runtime.skipped_bundles``, updated in place);
    the embedded engine decodes no bundles and passes none.
    """

    def __init__(self, state: StreamState, skipped_bundles: Mapping[str, int] | None = None) -> None:
        self._state = state
        self._skipped_bundles: Mapping[str, int] = skipped_bundles if skipped_bundles is not None else {}

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        yield from self._families(live=True)

    def _families(self, live: bool = False) -> list[Metric]:
        state = self._state
        lag = GaugeMetricFamily(
            c.METRIC_STREAM_LAG, "Records behind the end of each owned input partition.",
            labels=[c.LABEL_STAGE, c.LABEL_PARTITION],
        )
        dups = CounterMetricFamily(
            c.METRIC_STREAM_DUPLICATES.removesuffix("_total"),
            "Beacons dropped by stage 1 as duplicates of an earlier (session_id, seq).",
        )
        late = CounterMetricFamily(
            c.METRIC_STREAM_LATE_EVENTS.removesuffix("_total"),
            "Events whose pane ended more than the allowed lateness before the beacon arrived.",
        )
        events = CounterMetricFamily(
            c.METRIC_STREAM_EVENTS.removesuffix("_total"),
            "Events aggregated by stage 1 (duplicates excluded).",
        )
        partials = CounterMetricFamily(
            c.METRIC_STREAM_PARTIALS.removesuffix("_total"),
            "Partials by stage and outcome.", labels=[c.LABEL_STAGE, c.LABEL_OUTCOME],
        )
        skipped = CounterMetricFamily(
            c.METRIC_STREAM_SKIPPED.removesuffix("_total"),
            "Records (stage 1) and bundles (stage 2) skipped because they could not be "
            "decoded or validated, by reason.", labels=[c.LABEL_STAGE, c.LABEL_REASON],
        )
        dropped = CounterMetricFamily(
            c.METRIC_STREAM_DROPPED_EVENTS.removesuffix("_total"),
            "Events dropped by stage 1 for an event time outside the collector's bounds.",
            labels=[c.LABEL_REASON],
        )
        failed_cuts = CounterMetricFamily(
            c.METRIC_STREAM_FAILED_CUTS.removesuffix("_total"),
            "Stage-1 cuts whose commit or produce failed; their partitions were re-read.",
        )
        if live:
            stats = state.stage1_stats()
            counters = stats.counters
            for partition, value in sorted(stats.lag.items()):
                lag.add_metric(["1", str(partition)], value)
            for partition, value in sorted(state.partials_lag.items()):
                lag.add_metric(["2", str(partition)], value)
            dups.add_metric([], counters.duplicates)
            late.add_metric([], counters.late_events)
            events.add_metric([], counters.events)
            stage2 = state.stage2.counters
            partials.add_metric(["1", "produced"], counters.partials)
            partials.add_metric(["2", "applied"], stage2.applied)
            partials.add_metric(["2", "duplicate"], stage2.duplicate)
            partials.add_metric(["2", "late"], stage2.late)
            partials.add_metric(["2", "rejected"], stage2.rejected)
            partials.add_metric(["2", "overlapping"], stage2.overlapping)
            for stage, by_reason in (("1", counters.skipped_records), ("2", self._skipped_bundles)):
                for reason, n in sorted(by_reason.items()):
                    skipped.add_metric([stage, reason], n)
            for reason, n in sorted(counters.dropped_events.items()):
                dropped.add_metric([reason], n)
            failed_cuts.add_metric([], stats.failed_cuts)
        return [lag, dups, late, events, partials, skipped, dropped, failed_cuts]
