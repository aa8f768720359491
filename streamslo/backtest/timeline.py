"""What the backtest records at every evaluation tick: the figures alerts, triggers and plots need.

Use :class:`Timeline` as the ``on_tick`` of :func:`streamslo.backtest.replay.replay`.
At each tick it reads stage 2 the way the generated rules and the health
endpoint read it:

- per (SLO, region): the counters the generated SLI recording rules read
  (latency count and the bucket at the threshold; attempts and fatal errors
  or exits before start; stall + played seconds and stall seconds), as
  ``/metrics`` exposes them; :meth:`Timeline.finish` then
  evaluates each tier's rule over them as Prometheus does
  (``streamslo/backtest/promrate.py``: ``rate()`` over the long and short
  windows, or for windows of 1d and up the sums of hourly counts the rules
  record, ``streamslo/backtest/longwin.py``; burn >= factor on both; the
  long window's events >= ``low_traffic_min_events``);
- per (trigger, region): the engine's trigger state (``slo/health.py``:
  condition and breach) and the trigger's worst clause as a ratio to its
  limit (``alerts/trigger_signal.py``'s ``streamslo:trigger_ratio:max``; None
  without ``min_events``);
- per region: the health endpoint's verdict (``slo.health.region_health``);
- per latency SLO and region: its quantile over the shortest stream window;
- per SLO and region: the share of the period's error budget spent.

Times are seconds from the data's start.

Example::

    timeline = Timeline(spec, start=header.start)
    replay(spec, beacons, start=header.start, on_tick=timeline)
    timeline.finish()
    timeline.tiers[("errors", "fast", "eu-west-1")].holds[-1]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from alerts.long_windows import INTERVAL_S, is_counted
from slo import conventions as c
from slo import health
from slo.health import ConditionFigure
from slo.model import Spec
from slo.stage2 import RegionSnapshot, Stage2
from slo.windows import series_sli
from streamslo.backtest import promrate
from streamslo.backtest.longwin import counted_sum

__all__ = ["TierSeries", "Timeline", "TriggerSeries"]


@dataclass
class TierSeries:
    """One (SLO, tier, region): burn rates and the rule's expression per tick."""

    factor: float
    long: list[float | None] = field(default_factory=list)
    short: list[float | None] = field(default_factory=list)
    holds: list[bool] = field(default_factory=list)
    enough: list[bool] = field(default_factory=list)  # the low-traffic guard held


@dataclass
class TriggerSeries:
    """One (trigger, region): the engine's state and the autoscaling ratio per tick."""

    condition: list[bool] = field(default_factory=list)
    active: list[bool] = field(default_factory=list)
    ratio: list[float | None] = field(default_factory=list)
    # What stage 2 decided on: each clause's figure and the region's last data (the sweep re-decides).
    figures: list[tuple[ConditionFigure, ...]] = field(default_factory=list)
    last_data_at: list[float | None] = field(default_factory=list)


class Timeline:
    """Per-tick figures for every SLO tier, trigger and region; see the module docstring."""

    def __init__(self, spec: Spec, *, start: float) -> None:
        self.spec = spec
        self.start = start
        self.regions = tuple(spec.regions)
        self.window_s = min(spec.quantile_windows_s)
        self.t: list[float] = []
        self.tiers: dict[tuple[str, str, str], TierSeries] = {
            (slo.name, r.name, region): TierSeries(r.factor)
            for slo in spec.slos for r in spec.resolved_tiers(slo) for region in self.regions
        }
        self.triggers: dict[tuple[str, str], TriggerSeries] = {
            (t.name, region): TriggerSeries() for t in spec.triggers for region in self.regions
        }
        self.healthy: dict[str, list[bool]] = {region: [] for region in self.regions}
        self.quantiles: dict[tuple[str, str], list[float | None]] = {
            (slo.name, region): [] for slo in spec.slos if slo.is_latency for region in self.regions
        }
        self.budget_spent: dict[tuple[str, str], list[float | None]] = {
            (slo.name, region): [] for slo in spec.slos for region in self.regions
        }
        # (slo, region) -> per tick: [all events, good (latency bucket) or bad (ratio SLIs)] counters.
        self.counters: dict[tuple[str, str], tuple[list[float], list[float]]] = {
            (slo.name, region): ([], []) for slo in spec.slos for region in self.regions
        }
        self._edges = spec.histogram_buckets_s

    def __call__(self, now: float, stage2: Stage2) -> None:
        snap = stage2.snapshot(now)
        self.t.append(now - self.start)
        for region in self.regions:
            self._region(region, snap.regions.get(region), stage2, now)

    def _region(self, region: str, snap: RegionSnapshot | None, stage2: Stage2, now: float) -> None:
        spec = self.spec
        for slo in spec.slos:
            s = snap.slos.get(slo.name) if snap else None
            self._count(slo.name, slo.sli, slo.threshold_s, region, snap)
            spent = None
            if s is not None and s.events.get(spec.period_s):
                spent = 1.0 - s.budget_remaining
            self.budget_spent[(slo.name, region)].append(spent)
            if slo.is_latency and slo.quantile is not None:
                series_snap = snap.series.get((slo.sli, spec.evaluate_kind)) if snap else None
                q = series_snap.quantiles.get(self.window_s, {}).get(slo.quantile) if series_snap else None
                self.quantiles[(slo.name, region)].append(q)
        report = stage2.health_report(region)
        for trigger in spec.triggers:
            ts = self.triggers[(trigger.name, region)]
            trig = snap.triggers.get(trigger.name) if snap else None
            ts.condition.append(bool(trig and trig.condition))
            ts.active.append(bool(trig and trig.active))
            figures = report.figures.get(trigger.name, ()) if report else ()
            ts.ratio.append(_ratio(figures, trigger.min_events))
            ts.figures.append(figures)
            ts.last_data_at.append(report.last_data_at if report else None)
        verdict = health.region_health(spec, region, report, now)
        self.healthy[region].append(True if verdict is None else verdict.healthy)


    def _count(self, slo: str, sli: str, threshold_s: float | None, region: str, snap: RegionSnapshot | None) -> None:
        total, other = self.counters[(slo, region)]
        series = snap.series.get((series_sli(sli), self.spec.evaluate_kind)) if snap else None
        if series is None:
            total.append(np.nan)  # no series exposed yet: Prometheus has no sample
            other.append(np.nan)
        elif sli == c.SLI_ERRORS:
            total.append(float(series.attempts))
            other.append(float(series.errors))
        elif sli == c.SLI_EXITS_BEFORE_START:
            total.append(float(series.attempts))
            other.append(float(series.exits))
        elif sli == c.SLI_REBUFFERING:
            total.append(series.stall_s + series.played_s)
            other.append(series.stall_s)
        else:
            total.append(float(series.count))
            other.append(float(series.le_counts[self._edges.index(threshold_s)]))

    def finish(self) -> None:
        """Evaluate every tier's generated rule over the recorded counters (see the module docstring)."""
        t = np.asarray(self.t)
        guard = self.spec.low_traffic_min_events
        for slo in self.spec.slos:
            for region in self.regions:
                total, other = (np.asarray(v, dtype=np.float64) for v in self.counters[(slo.name, region)])
                windows = _Windows(t, t + self.start, total, other, slo.kind != c.SLI_KIND_LATENCY)
                for resolved in self.spec.resolved_tiers(slo):
                    long_bad, long_all = windows.counts(resolved.tier.long_s)
                    short_bad, short_all = windows.counts(resolved.tier.short_s)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        burns = (long_bad / long_all / slo.budget, short_bad / short_all / slo.budget)
                    factor = resolved.factor
                    with np.errstate(invalid="ignore"):
                        holds = (burns[0] >= factor) & (burns[1] >= factor)
                        enough = windows.events(resolved.tier.long_s) >= guard if guard > 0 else np.ones_like(holds)
                    holds &= enough
                    series = self.tiers[(slo.name, resolved.name, region)]
                    series.long = [None if not np.isfinite(v) else float(v) for v in burns[0]]
                    series.short = [None if not np.isfinite(v) else float(v) for v in burns[1]]
                    series.holds = holds.tolist()
                    series.enough = enough.tolist()


class _Windows:
    """(bad, all) over a window at every tick, as the generated SLI records compute them.

    Windows under 1d: ``rate()`` of the raw counters (a latency SLO's bad is
    count - bucket); counted windows (``alerts.long_windows.is_counted``): the
    sums of hourly ``increase()`` counts (``streamslo/backtest/longwin.py``).
    Either way the ratio bad / all is the record's value.
    """

    def __init__(self, t: np.ndarray, t_abs: np.ndarray, total: np.ndarray, other: np.ndarray,
                 other_is_bad: bool) -> None:
        self.t, self.t_abs, self.total, self.other, self.other_is_bad = t, t_abs, total, other, other_is_bad
        self._hourly: tuple[np.ndarray, np.ndarray] | None = None

    def _bad(self, all_: np.ndarray, other: np.ndarray) -> np.ndarray:
        return other if self.other_is_bad else all_ - other

    def _hourly_counts(self) -> tuple[np.ndarray, np.ndarray]:
        if self._hourly is None:
            all_ = promrate.increase(self.t, self.total, INTERVAL_S)
            self._hourly = self._bad(all_, promrate.increase(self.t, self.other, INTERVAL_S)), all_
        return self._hourly

    def counts(self, window_s: float) -> tuple[np.ndarray, np.ndarray]:
        if is_counted(window_s):
            bad, all_ = self._hourly_counts()
            return counted_sum(self.t_abs, bad, window_s), counted_sum(self.t_abs, all_, window_s)
        all_rate = promrate.rate(self.t, self.total, window_s)
        return self._bad(all_rate, promrate.rate(self.t, self.other, window_s)), all_rate

    def events(self, window_s: float) -> np.ndarray:
        """The low-traffic guard's events over the window (``increase()``, or the counted sum)."""
        if is_counted(window_s):
            return counted_sum(self.t_abs, self._hourly_counts()[1], window_s)
        return promrate.increase(self.t, self.total, window_s)


def _ratio(figures: tuple[ConditionFigure, ...], min_events: int) -> float | None:
    """The worst clause's value / limit, leaving out clauses without ``min_events`` (as the rule does)."""
    ratios = [
        f.value / f.limit
        for f in figures
        if f.value is not None and f.limit > 0 and f.events >= max(min_events, 1)
    ]
    return max(ratios) if ratios else None
