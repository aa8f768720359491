"""What stage 2 shows of itself: typed, immutable snapshots of every region.

:meth:`slo.stage2.Stage2.snapshot` builds a :class:`Snapshot` (cumulative
totals, quantiles, events and errors per window, burn rates, budget left,
tier and trigger states, freshness); ``slo/exposition/prometheus.py``, the
status page and the backtest read it and never the live windows. The types
are re-exported by ``slo.stage2``.

Example::

    snap = stage2.snapshot(now)
    snap.regions["eu-west-1"].series[("errors", "rum")].error_ratio(60.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slo import conventions as c
from slo.budget import TierState, TriggerState
from slo.windows import Series

__all__ = ["Counters", "RegionSnapshot", "SLOSnapshot", "SeriesSnapshot", "Snapshot", "series_snapshot"]


@dataclass(frozen=True)
class SeriesSnapshot:
    """One (region, sli, kind): cumulative totals and live window views."""

    sli: str
    kind: str
    count: int
    sum_s: float
    le_counts: tuple[int, ...]
    attempts: int
    errors: int
    # window_s -> quantile -> seconds; only non-empty sketched windows
    quantiles: dict[float, dict[float, float]]
    # window_s -> events (count for latency SLIs, attempts for errors)
    window_events: dict[float, int]
    # window_s -> fatal errors (errors SLI; 0 for latency SLIs): with window_events
    # the error ratio of every window, including those no burn-rate tier uses (1m)
    window_errors: dict[float, int]

    def error_ratio(self, window_s: float) -> float | None:
        """Errors / attempts over ``window_s``; None without attempts or for latency SLIs.

        ``snap.regions["eu-west-1"].series[("errors", "rum")].error_ratio(60.0)``
        """
        attempts = self.window_events.get(window_s, 0)
        if self.sli != c.SLI_ERRORS or attempts == 0:
            return None
        return self.window_errors.get(window_s, 0) / attempts


@dataclass(frozen=True)
class SLOSnapshot:
    """One SLO in one region, evaluated on ``Spec.evaluate_kind``."""

    slo: str
    sli: str
    budget: float
    burn_rates: dict[float, float]  # window_s -> burn rate (tier windows and the period)
    events: dict[float, int]  # window_s -> total events
    budget_remaining: float
    tiers: tuple[TierState, ...]


@dataclass(frozen=True)
class RegionSnapshot:
    region: str
    series: dict[tuple[str, str], SeriesSnapshot]
    slos: dict[str, SLOSnapshot]
    triggers: dict[str, TriggerState]
    freshness_s: float | None  # now - newest event time seen in this region, None before any event
    stage1_late_events: int  # events stage 1 reported late, summed over partials


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


def series_snapshot(series: Series) -> SeriesSnapshot:
    """The immutable view of one series: totals, window events and errors, exported quantiles."""
    quantiles: dict[float, dict[float, float]] = {}
    events: dict[float, int] = {}
    errors: dict[float, int] = {}
    for window_s, window in series.windows.items():
        events[window_s] = window.count if series.is_latency else window.attempts
        errors[window_s] = window.errors
        if window.sketches is None or window.count == 0:
            continue
        values = window.quantiles(c.EXPORTED_QUANTILES)
        quantiles[window_s] = {
            q: v for q, v in zip(c.EXPORTED_QUANTILES, values, strict=True) if v is not None
        }
    return SeriesSnapshot(
        sli=series.sli,
        kind=series.kind,
        count=series.count,
        sum_s=series.sum_s,
        le_counts=tuple(int(v) for v in series.le_counts),
        attempts=series.attempts,
        errors=series.errors,
        quantiles=quantiles,
        window_events=events,
        window_errors=errors,
    )
