"""What stage 2 shows of itself: typed, immutable snapshots of every region.

:meth:`slo.stage2.Stage2.snapshot` builds a :class:`Snapshot` (cumulative
totals, quantiles, events and errors per window, burn rates, budget left,
SLI ratios, tier and trigger states, freshness); ``slo/exposition/prometheus.py``,
the status page and the backtest read it and never the live windows. The
types are re-exported by ``slo.stage2``.

A region's SLOs are evaluated over the region (every dimension value summed),
so ``RegionSnapshot.series`` is keyed by (sli, kind) and adds the dimension
values up; ``RegionSnapshot.by_dim`` keeps the breakdown, keyed by (sli, kind,
dim) with dim ``""`` for the SLIs that do not opt in to the spec's dimension.

Example::

    snap = stage2.snapshot(now)
    snap.regions["eu-west-1"].series[("errors", "rum")].error_ratio(60.0)
    snap.regions["eu-west-1"].slos["rebuffering"].ratios[300.0]   # stall / (stall + played)
    snap.regions["eu-west-1"].by_dim[("ttff", "rum", "akamai")].count
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from slo import conventions as c
from slo.budget import TierState, TriggerState
from slo.windows import US, Counts, Series, merged_quantiles, summed_counts

__all__ = ["Counters", "RegionSnapshot", "SLOSnapshot", "SeriesSnapshot", "Snapshot", "series_snapshot"]


@dataclass(frozen=True)
class SeriesSnapshot:
    """One (region, sli, kind), or one dimension value of it: cumulative totals and live window views.

    ``sli`` is a latency SLI, ``errors`` (every playback outcome) or
    ``rebuffering``; ``dim`` is ``""`` for the region's sum and for SLIs
    without the dimension.
    """

    sli: str
    kind: str
    count: int
    sum_s: float
    le_counts: tuple[int, ...]
    attempts: int
    errors: int
    # window_s -> quantile -> seconds; only non-empty sketched windows
    quantiles: dict[float, dict[float, float]]
    # window_s -> events: count for latency SLIs, attempts for errors, whole
    # seconds watched (stall + played) for rebuffering
    window_events: dict[float, int]
    # window_s -> fatal errors (errors SLI; 0 for the others): with window_events
    # the error ratio of every window, including those no burn-rate tier uses (1m)
    window_errors: dict[float, int]
    dim: str = ""
    exits: int = 0
    warnings: int = 0
    business: int = 0
    stalls: int = 0
    stall_s: float = 0.0
    played_s: float = 0.0

    def error_ratio(self, window_s: float) -> float | None:
        """Errors / attempts over ``window_s``; None without attempts or for other SLIs.

        ``snap.regions["eu-west-1"].series[("errors", "rum")].error_ratio(60.0)``
        """
        attempts = self.window_events.get(window_s, 0)
        if self.sli != c.SLI_ERRORS or attempts == 0:
            return None
        return self.window_errors.get(window_s, 0) / attempts


@dataclass(frozen=True)
class SLOSnapshot:
    """One SLO in one region (every dimension value summed), evaluated on ``Spec.evaluate_kind``."""

    slo: str
    sli: str
    budget: float
    burn_rates: dict[float, float]  # window_s -> burn rate (tier windows and the period)
    # window_s -> total events (tier windows and the period; whole seconds watched for rebuffering)
    events: dict[float, int]
    budget_remaining: float
    tiers: tuple[TierState, ...]
    # window_s -> bad / total of a ratio or time_ratio SLO over each quantile
    # window and the period; absent without events, empty for latency SLOs
    ratios: dict[float, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RegionSnapshot:
    region: str
    series: dict[tuple[str, str], SeriesSnapshot]
    slos: dict[str, SLOSnapshot]
    triggers: dict[str, TriggerState]
    freshness_s: float | None  # now - newest event time seen in this region, None before any event
    stage1_late_events: int  # events stage 1 reported late, summed over partials
    # (sli, kind, dim) -> one dimension value's series; the same objects as
    # ``series`` for the SLIs without the dimension (dim "")
    by_dim: dict[tuple[str, str, str], SeriesSnapshot] = field(default_factory=dict)


@dataclass(frozen=True)
class Counters:
    applied: int = 0
    duplicate: int = 0
    late: int = 0
    late_events: int = 0
    rejected: int = 0
    overlapping: int = 0


@dataclass(frozen=True)
class Snapshot:
    now: float
    regions: dict[str, RegionSnapshot]
    counters: Counters = field(default_factory=Counters)


def window_events(sli: str, counts: Counts) -> int:
    """The events of one window of a series: see ``SeriesSnapshot.window_events``."""
    if sli == c.SLI_ERRORS:
        return counts.attempts
    if sli == c.SLI_REBUFFERING:
        return (counts.stall_us + counts.played_us) // US
    return counts.count


def series_snapshot(parts: Sequence[Series], dim: str = "") -> SeriesSnapshot:
    """The immutable view of one series, or of several (one per dimension value) added up.

    ``parts`` share sli and kind and are not empty; quantiles come from their
    window sketches merged.
    """
    first = parts[0]
    quantiles: dict[float, dict[float, float]] = {}
    events: dict[float, int] = {}
    errors: dict[float, int] = {}
    for window_s, window in first.windows.items():
        counts = summed_counts(parts, window_s)
        events[window_s] = window_events(first.sli, counts)
        errors[window_s] = counts.errors
        if window.sketches is None or counts.count == 0:
            continue
        values = merged_quantiles(parts, window_s, c.EXPORTED_QUANTILES)
        quantiles[window_s] = {
            q: v for q, v in zip(c.EXPORTED_QUANTILES, values, strict=True) if v is not None
        }
    total = summed_counts(parts)
    return SeriesSnapshot(
        sli=first.sli,
        kind=first.kind,
        dim=dim,
        count=total.count,
        sum_s=sum(p.sum_s for p in parts),
        le_counts=total.le_counts,
        attempts=total.attempts,
        errors=total.errors,
        exits=total.exits,
        warnings=total.warnings,
        business=total.business,
        stalls=total.stalls,
        stall_s=total.stall_us / US,
        played_s=total.played_us / US,
        quantiles=quantiles,
        window_events=events,
        window_errors=errors,
    )
