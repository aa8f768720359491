"""What the backtest records at every evaluation tick: the figures alerts, triggers and plots need.

Use :class:`Timeline` as the ``on_tick`` of :func:`streamslo.backtest.replay.replay`.
At each tick it reads stage 2 the way the generated rules and the health
endpoint read it:

- per (SLO, tier, region): the long and short burn rates and whether the
  tier's expression holds (``slo.budget.evaluate_tier``: same windows,
  factor and low-traffic guard as ``alerts/alerting.py``'s rule);
- per (trigger, region): the engine's trigger state (``slo/health.py``:
  condition and breach) and the trigger's worst clause as a ratio to its
  limit (``alerts/trigger_signal.py``'s ``slo:trigger_ratio:max``; None
  without ``min_events``);
- per region: the health endpoint's verdict (``slo.health.region_health``);
- per latency SLO and region: its quantile over the shortest stream window;
- per SLO and region: the share of the period's error budget spent.

Times are seconds from the data's start.

Example::

    timeline = Timeline(spec, start=header.start)
    replay(spec, beacons, start=header.start, on_tick=timeline)
    timeline.tiers[("errors", "fast", "eu-west-1")].holds[-1]
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slo import health
from slo.health import ConditionFigure
from slo.model import Spec
from slo.stage2 import RegionSnapshot, Stage2

__all__ = ["TierSeries", "Timeline", "TriggerSeries"]


@dataclass
class TierSeries:
    """One (SLO, tier, region): burn rates and the rule's expression per tick."""

    factor: float
    long: list[float | None] = field(default_factory=list)
    short: list[float | None] = field(default_factory=list)
    holds: list[bool] = field(default_factory=list)


@dataclass
class TriggerSeries:
    """One (trigger, region): the engine's state and the autoscaling ratio per tick."""

    condition: list[bool] = field(default_factory=list)
    active: list[bool] = field(default_factory=list)
    ratio: list[float | None] = field(default_factory=list)


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

    def __call__(self, now: float, stage2: Stage2) -> None:
        snap = stage2.snapshot(now)
        self.t.append(now - self.start)
        for region in self.regions:
            self._region(region, snap.regions.get(region), stage2, now)

    def _region(self, region: str, snap: RegionSnapshot | None, stage2: Stage2, now: float) -> None:
        spec = self.spec
        for slo in spec.slos:
            s = snap.slos.get(slo.name) if snap else None
            states = {t.tier: t for t in s.tiers} if s else {}
            for resolved in spec.resolved_tiers(slo):
                series = self.tiers[(slo.name, resolved.name, region)]
                state = states.get(resolved.name)
                has = state is not None and state.long_events > 0
                series.long.append(state.long_burn if has and state else None)
                series.short.append(state.short_burn if has and state else None)
                series.holds.append(bool(state and state.firing))
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
        verdict = health.region_health(spec, region, report, now)
        self.healthy[region].append(True if verdict is None else verdict.healthy)


def _ratio(figures: tuple[ConditionFigure, ...], min_events: int) -> float | None:
    """The worst clause's value / limit, leaving out clauses without ``min_events`` (as the rule does)."""
    ratios = [
        f.value / f.limit
        for f in figures
        if f.value is not None and f.limit > 0 and f.events >= max(min_events, 1)
    ]
    return max(ratios) if ratios else None
