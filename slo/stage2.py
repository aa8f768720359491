"""Stage 2: merge stage-1 partials into per-region rolling windows, idempotently.

Both transports drive the same class: the Faust agent (``slo/stream/``) and the
embedded engine (``streamslo/engine.py``). The API is stable:

- ``Stage2(spec)``;
- ``apply(partial) -> bool``: merge one :class:`slo.partial.Partial`; False when
  it was skipped (already applied, or malformed). Idempotent, see below;
- ``advance(now)``: slide every window to ``now`` and observe every trigger
  (``slo/health.py``: ``for``, ``recover_for``, ``on_no_data``, ``stale_after``);
- ``health_report(region)``: that state plus the figures, for the health endpoint;
- ``snapshot(now) -> Snapshot``: advance, then a typed, immutable view of every
  region (cumulative totals, quantiles, events and errors per window, burn
  rates, budget left, SLI ratios, tier and trigger states, freshness; the types
  are in ``slo/snapshot.py``) for ``slo/exposition/prometheus.py`` and the status page;
- ``regions()``, ``export_region(region) -> bytes``, ``import_region(region, data)``,
  ``drop_region(region)``: whole-region state for a changelogged table (write
  it once per region per flush) and for partition revocation;
- ``counters``: applied / duplicate / late / rejected / overlapping partials
  (monotonic for the life of the object, never reset by ``drop_region``). A
  partial is *late* when its pane had already left at least one window (it is
  still applied to the longer windows and to the cumulative totals).

Series: one per (sli, kind, dim) of a region (``slo/windows.py``), for the
latency SLIs, ``errors`` (every playback outcome; the ``exits_before_start``
SLI reads its exits and attempts) and ``rebuffering``. ``dim`` is the spec
dimension's value for the SLIs that opt in, mapped onto its allow-list here
too (anything else -> ``other``), and ``""`` for the others, so a region
holds at most (values + 1) series per opted-in SLI and kind whatever the
partials say. Every SLO and trigger is evaluated over the region: the
dimension values' counts added up, their sketches merged.

Idempotence under at-least-once delivery: every partial carries its stage-1
input ``source`` and offset range ``lo < offset <= hi``. One stage-1 flush
emits several partials with the same ``(source, lo, hi)`` (one per sli, kind,
dim and pane), so per (region, source) stage 2 keeps the highest applied ``hi``
*and* the set of ``(sli, kind, dim, pane_start)`` applied at that ``hi``. A partial
is skipped when its ``hi`` is below the watermark, or equal to it with its key
already in the set. Replays of whole flushes and duplicates of single partials
are both caught; the watermarks travel in ``export_region`` so a restarted
worker keeps skipping (a state exported before series had a dim, ``S2R1``,
still imports: its series and keys take dim ``""``; ``slo/stage2_state.py``).
A partial starting below the watermark but ending above it
(``lo < watermark < hi``: stage 1 re-cut a flush differently) cannot be
split; it is applied and counted in ``counters.overlapping``.

Not thread-safe: call it from one thread or event loop (both transports
serve ``/metrics`` from the loop that applies partials).

Example::

    stage2 = Stage2(spec)
    for partial in stage1.flush("beacons/0", now):
        stage2.apply(partial)
    snap = stage2.snapshot(now)
    snap.regions["eu-west-1"].series[("ttff", "rum")].quantiles[60.0][0.95]
"""

from __future__ import annotations

from slo import conventions as c
from slo.budget import (
    budget_remaining,
    burn_rate,
    condition_holds,
    evaluate_tier,
    ratio_counts,
    slo_counts,
)
from slo.health import ConditionFigure, HealthReport
from slo.model import SLO, Condition, Spec, Trigger, sli_kind
from slo.partial import Partial
from slo.snapshot import (
    Counters,
    RegionSnapshot,
    SeriesSnapshot,
    SLOSnapshot,
    Snapshot,
    series_snapshot,
    window_events,
)
from slo.stage2_state import RegionState, decode_region, encode_region
from slo.windows import US, Counts, Series, merged_quantiles, series_sli, summed_counts

__all__ = ["Counters", "RegionSnapshot", "SLOSnapshot", "SeriesSnapshot", "Snapshot", "Stage2"]

# The SLIs that have series of their own; exits_before_start is read from errors.
SERIES_SLIS = (*c.LATENCY_SLIS, c.SLI_ERRORS, c.SLI_REBUFFERING)

class Stage2:
    """Per-region rolling windows fed by partials; see the module docstring."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self._regions: dict[str, RegionState] = {}
        self._now: float | None = None
        self._applied = self._duplicate = self._late = self._late_events = 0
        self._rejected = self._overlapping = 0
        # The series SLIs that carry the dimension: errors when either ratio SLI opts in.
        self._split = {series_sli(sli) for sli in c.SLIS if spec.splits(sli)}

    # -- ingest -----------------------------------------------------------------

    def apply(self, partial: Partial) -> bool:
        """Merge ``partial`` unless already applied or malformed; True when merged."""
        key = (partial.sli, partial.kind, partial.dim, partial.pane_start)
        region = self._regions.get(partial.region)
        mark = region.watermarks.get(partial.source) if region else None
        if (
            region is not None
            and mark is not None
            and (partial.hi < mark or (partial.hi == mark and key in region.flushed[partial.source]))
        ):
            self._duplicate += 1
            return False
        if partial.sli not in SERIES_SLIS or partial.kind not in c.KINDS or partial.hi < partial.lo:
            self._rejected += 1
            return False
        if region is None:
            region = self._regions[partial.region] = RegionState(self.spec)
        series = self._series(region, partial.sli, partial.kind, self._dim_of(partial.sli, partial.dim))
        if series.check(partial) is not None:
            self._rejected += 1
            return False
        if mark is not None and partial.hi > mark and partial.lo < mark:
            self._overlapping += 1
        if not series.apply(partial):
            self._late += 1
            self._late_events += _events(partial)
        if mark is None or partial.hi > mark:
            region.watermarks[partial.source] = partial.hi
            region.flushed[partial.source] = {key}
        else:
            region.flushed[partial.source].add(key)
        self._applied += 1
        return True

    def _dim_of(self, sli: str, dim: str) -> str:
        """The series' dim for a partial's ``dim``: mapped onto the allow-list, or "" without the dimension."""
        if self.spec.dimension is None or series_sli(sli) not in self._split:
            return ""
        return self.spec.dimension.map(dim)

    def _series(self, region: RegionState, sli: str, kind: str, dim: str) -> Series:
        by_dim = region.series.setdefault((sli, kind), {})
        series = by_dim.get(dim)
        if series is None:
            series = by_dim[dim] = Series(self.spec, sli, kind, dim)
            if self._now is not None:
                series.advance(self._now)
        return series

    # -- time -------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Slide every window to ``now`` (never backwards) and update trigger states."""
        if self._now is not None and now < self._now:
            now = self._now
        self._now = now
        for region in self._regions.values():
            for series in region.all_series():
                series.advance(now)
            last_data = _last_data_at(region)
            for trigger in self.spec.triggers:
                figures = tuple(self._condition(region, cond, trigger) for cond in trigger.conditions)
                holds: bool | None = any(f.holds for f in figures)
                if not holds and (
                    all(f.events < max(1, trigger.min_events) for f in figures)
                    or last_data is None
                    or now - last_data > trigger.stale_after_s
                ):
                    holds = None  # no usable data: the trigger's on_no_data decides
                region.triggers.update(trigger.name, holds, now, figures)

    def _condition(self, region: RegionState, cond: Condition, trigger: Trigger) -> ConditionFigure:
        """One trigger clause over the region (every dimension value) and the trigger's window."""
        parts = region.parts(cond.sli, self.spec.evaluate_kind)
        limit = cond.above_ratio if cond.above_ratio is not None else cond.above_s
        if not parts or trigger.window_s not in parts[0].windows:
            return ConditionFigure(cond.sli, cond.quantile, None, limit or 0.0, 0, False)
        counts = summed_counts(parts, trigger.window_s)
        events = window_events(series_sli(cond.sli), counts)
        if sli_kind(cond.sli) != c.SLI_KIND_LATENCY:
            bad, total = ratio_counts(cond.sli, counts)
            # min_events counts events (whole seconds watched for rebuffering): scale it to total's unit
            holds = condition_holds(cond, None, bad, total, trigger.min_events * _unit(cond.sli))
            ratio = bad / total if total else None
            return ConditionFigure(cond.sli, None, ratio, limit or 0.0, events, holds)
        value = merged_quantiles(parts, trigger.window_s, [cond.quantile])[0] if cond.quantile is not None else None
        holds = condition_holds(cond, value, 0, counts.count, trigger.min_events)
        return ConditionFigure(cond.sli, cond.quantile, value, limit or 0.0, events, holds)

    def health_report(self, region: str) -> HealthReport | None:
        """What the health endpoint needs about ``region`` (None when stage 2 has no state for it)."""
        state = self._regions.get(region)
        if state is None:
            return None
        return HealthReport(
            region=region,
            memories=dict(state.triggers.memory),
            figures=dict(state.triggers.figures),
            last_data_at=_last_data_at(state),
        )

    # -- views ------------------------------------------------------------------

    def snapshot(self, now: float) -> Snapshot:
        """Advance to ``now`` and return an immutable view of every region."""
        self.advance(now)
        regions = {name: self._region_snapshot(name, region, now) for name, region in self._regions.items()}
        return Snapshot(now=now, regions=regions, counters=self.counters)

    @property
    def counters(self) -> Counters:
        return Counters(
            applied=self._applied,
            duplicate=self._duplicate,
            late=self._late,
            late_events=self._late_events,
            rejected=self._rejected,
            overlapping=self._overlapping,
        )

    def _region_snapshot(self, name: str, region: RegionState, now: float) -> RegionSnapshot:
        series: dict[tuple[str, str], SeriesSnapshot] = {}
        by_dim: dict[tuple[str, str, str], SeriesSnapshot] = {}
        for (sli, kind), dims in sorted(region.series.items()):
            views = {dim: series_snapshot([s], dim) for dim, s in sorted(dims.items())}
            by_dim.update({(sli, kind, dim): view for dim, view in views.items()})
            series[(sli, kind)] = views[""] if list(views) == [""] else series_snapshot(list(dims.values()))
        sums: dict[tuple[str, float], Counts] = {}  # (series sli, window) -> counts, shared by its SLOs
        slos = {slo.name: self._slo_snapshot(region, slo, sums) for slo in self.spec.slos}
        triggers = {t.name: region.triggers.state(t.name, now) for t in self.spec.triggers}
        everything = region.all_series()
        newest = max((s.max_event_time for s in everything), default=0.0)
        return RegionSnapshot(
            region=name,
            series=series,
            by_dim=by_dim,
            slos=slos,
            triggers=triggers,
            freshness_s=now - newest if newest > 0 else None,
            stage1_late_events=sum(s.stage1_late for s in everything),
        )

    def _slo_snapshot(self, region: RegionState, slo: SLO, sums: dict[tuple[str, float], Counts]) -> SLOSnapshot:
        parts = region.parts(slo.sli, self.spec.evaluate_kind)

        def bad_total(window_s: float) -> tuple[int, int]:
            if not parts:
                return 0, 0
            key = (series_sli(slo.sli), window_s)
            if key not in sums:
                sums[key] = summed_counts(parts, window_s)
            return slo_counts(slo, sums[key], parts[0].edges)

        counts = {w: bad_total(w) for w in self.spec.alert_windows_s}
        unit = _unit(slo.sli)
        tiers = tuple(
            evaluate_tier(
                resolved,
                slo.budget,
                counts[resolved.tier.long_s],
                counts[resolved.tier.short_s],
                self.spec.low_traffic_min_events * unit,
                severity=slo.severity_of(resolved.tier),
            )
            for resolved in self.spec.resolved_tiers(slo)
        )
        ratios: dict[float, float] = {}
        if slo.kind != c.SLI_KIND_LATENCY:
            for w in sorted({*self.spec.quantile_windows_s, self.spec.period_s}):
                bad, total = bad_total(w)
                if total > 0:
                    ratios[w] = bad / total
        bad, total = counts[self.spec.period_s]
        return SLOSnapshot(
            slo=slo.name,
            sli=slo.sli,
            budget=slo.budget,
            burn_rates={w: burn_rate(b, t, slo.budget) for w, (b, t) in counts.items()},
            events={w: t // unit for w, (_, t) in counts.items()},
            budget_remaining=budget_remaining(bad, total, slo.budget),
            tiers=tiers,
            ratios=ratios,
        )

    # -- region state -----------------------------------------------------------

    def regions(self) -> list[str]:
        """Regions with state, sorted."""
        return sorted(self._regions)

    def drop_region(self, region: str) -> None:
        """Forget ``region`` (partition revoked): it is no longer exported."""
        self._regions.pop(region, None)

    def region_nbytes(self, region: str) -> int:
        """Bytes held by the windows of ``region`` (memory accounting)."""
        state = self._regions.get(region)
        return sum(s.nbytes for s in state.all_series()) if state else 0

    def export_region(self, region: str) -> bytes:
        """Serialize the whole state of ``region`` (compressed msgpack); KeyError if unknown."""
        return encode_region(self._regions[region])

    def import_region(self, region: str, data: bytes) -> None:
        """Replace ``region``'s state by ``export_region`` output (or an ``S2R1`` one); ValueError if it does not fit.

        Stored dims are mapped through the spec's dimension as partials are, so
        a state from before the spec declared one lands in ``other``; two
        stored series landing on one dim (the allow-list shrank) do not fit.
        """
        state = decode_region(self.spec, data, self._dim_of)
        self._regions[region] = state
        if self._now is not None:
            for series in state.all_series():
                series.advance(self._now)

def _unit(sli: str) -> int:
    """Counted units per event of ``sli``: microseconds per second watched for the time ratio, else 1."""
    return US if sli_kind(sli) == c.SLI_KIND_TIME_RATIO else 1


def _events(partial: Partial) -> int:
    """The events a partial summarizes: attempts, stalls, or latency values."""
    if partial.sli == c.SLI_ERRORS:
        return partial.attempts
    if partial.sli == c.SLI_REBUFFERING:
        return partial.stalls
    return partial.count


def _last_data_at(region: RegionState) -> float | None:
    """When the newest data of the region was received (collector clock), None before any."""
    newest = max((max(s.max_received_at, s.max_event_time) for s in region.all_series()), default=0.0)
    return newest if newest > 0 else None
