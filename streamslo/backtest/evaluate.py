"""From a :class:`Timeline` to what would have paged, scaled and failed over, and when.

Use :func:`evaluate` once the replay is over. The rules it applies:

- a burn-rate tier fires as Prometheus fires its generated rule: pending at
  the first tick its expression holds, firing once it has held for the
  tier's ``for:`` (at the first tick with ``t - pending >= for``), resolved at
  the first tick it no longer holds;
- a trigger fires while the engine's own state is breached (``slo/health.py``:
  ``for`` then ``recover_for``, what the generated trigger alert reproduces
  with ``for`` and ``keep_firing_for``);
- failover: Route 53 requests the region's health endpoint every 10 s and
  moves traffic after ``FailureThreshold`` consecutive ``SLO_BREACH`` answers,
  back after as many ``SLO_OK`` (``alerts/route53.py``);
- scale-out: ``streamslo:trigger_ratio:held<for>`` (the ratio's minimum over the
  last ``for:``) read by :class:`slo.hpa.Hpa` every 15 s, configured by the
  generated HPA object (``alerts/autoscaler.py``);
- an alert detects an incident of its region when it fires between the
  incident's start and its end plus a grace (the tier's long window, the
  trigger's window plus ``for``): the windows still hold the incident's
  events then. A firing that detects nothing is a false alarm (a false page
  when its severity is ``page``). Detection delay: fire time - incident start.

Example::

    result = evaluate(spec, timeline, incidents, eval_interval_s=10.0)
    result["alerts"][0]["detection_delay_s"]
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from alerts import alerting, autoscaler, route53
from slo.hpa import SYNC_PERIOD_S, Hpa
from slo.model import TARGET_HPA, Spec, Trigger
from streamslo.backtest.data import Incident
from streamslo.backtest.timeline import Timeline

__all__ = ["Firing", "evaluate", "failover", "held", "hpa_trajectory", "intervals", "match", "prometheus_alert"]

Interval = tuple[float, float | None]


@dataclass(frozen=True)
class Firing:
    """One firing of one alert in one region, matched against the incidents."""

    name: str
    slo: str | None
    tier: str | None
    trigger: str | None
    region: str
    severity: str
    fired_at: float
    resolved_at: float | None
    incident: str | None
    detection_delay_s: float | None


def prometheus_alert(t: list[float], holds: list[bool], for_s: float) -> list[Interval]:
    """Firing intervals of a rule with ``for:`` evaluated at the ticks ``t``."""
    out: list[Interval] = []
    pending: float | None = None
    fired: float | None = None
    for now, h in zip(t, holds, strict=True):
        if h:
            pending = now if pending is None else pending
            if fired is None and now - pending >= for_s:
                fired = now
        else:
            if fired is not None:
                out.append((fired, now))
            pending = fired = None
    if fired is not None:
        out.append((fired, None))
    return out


def intervals(t: list[float], flags: list[bool]) -> list[Interval]:
    """Intervals where ``flags`` is true: (first true tick, first false tick after it)."""
    return prometheus_alert(t, flags, 0.0)


def failover(t: list[float], healthy: list[bool], threshold: int,
             every_s: float = route53.REQUEST_INTERVAL_S) -> list[Interval]:
    """(moved, back) per failover: Route 53 checks every ``every_s``, ``threshold`` in a row flip it."""
    out: list[Interval] = []
    next_check = t[0] if t else 0.0
    unhealthy, streak = False, 0
    moved: float | None = None
    for now, ok in zip(t, healthy, strict=True):
        if now < next_check:
            continue
        next_check += every_s
        streak = streak + 1 if ok == unhealthy else 0  # answers against the current status
        if streak >= threshold:
            unhealthy, streak = not unhealthy, 0
            if unhealthy:
                moved = now
            else:
                out.append((moved or now, now))
                moved = None
    if moved is not None:
        out.append((moved, None))
    return out


def held(t: list[float], ratio: list[float | None], for_s: float) -> list[float | None]:
    """``min_over_time(ratio[for])`` at every tick: the samples in ``[now - for, now]``.

    Closed at both ends, as Prometheus 2.x selects a range (the promtool and
    Prometheus this project tests with); 1e-9 absorbs float ticks.
    """
    out: list[float | None] = []
    for i, now in enumerate(t):
        values = []
        j = i
        while j >= 0 and now - t[j] <= for_s + 1e-9:
            if ratio[j] is not None:
                values.append(ratio[j])
            j -= 1
        out.append(min(values) if values else None)  # type: ignore[type-var]
    return out


def hpa_trajectory(t: list[float], value: list[float | None], hpa_spec: dict[str, Any]) -> list[tuple[float, int]]:
    """Replicas after every HPA sync (every 15 s) reading ``value``; starts at ``minReplicas``."""
    hpa = Hpa(hpa_spec, replicas=hpa_spec["minReplicas"])
    out = [(t[0] if t else 0.0, hpa.replicas)]
    next_sync = t[0] if t else 0.0
    for now, v in zip(t, value, strict=True):
        if now >= next_sync:
            next_sync += SYNC_PERIOD_S
            out.append((now, hpa.sync(now, v)))
    return out


def match(region: str, span: Interval, incidents: list[Incident], grace_s: float) -> Incident | None:
    """The first incident of ``region`` that a firing starting at ``span[0]`` detects, if any."""
    fired = span[0]
    for inc in incidents:
        if inc.covers(region) and inc.start_s <= fired <= inc.end_s + grace_s:
            return inc
    return None


def _firings(spec: Spec, timeline: Timeline, incidents: list[Incident]) -> list[Firing]:
    out: list[Firing] = []
    for slo in sorted(spec.slos, key=lambda s: s.name):
        for resolved in spec.resolved_tiers(slo):
            name = alerting.burn_alert_name(resolved.tier)
            for region in timeline.regions:
                series = timeline.tiers[(slo.name, resolved.name, region)]
                for span in prometheus_alert(timeline.t, series.holds, resolved.tier.for_s):
                    inc = match(region, span, incidents, resolved.tier.long_s)
                    out.append(Firing(name, slo.name, resolved.name, None, region, slo.severity_of(resolved.tier),
                                      span[0], span[1], inc.name if inc else None,
                                      span[0] - inc.start_s if inc else None))
    for trigger in spec.triggers:
        for region in timeline.regions:
            ts = timeline.triggers[(trigger.name, region)]
            for span in intervals(timeline.t, ts.active):
                inc = match(region, span, incidents, trigger.window_s + trigger.for_s)
                out.append(Firing(alerting.trigger_alert_name(trigger), None, None, trigger.name, region,
                                  alerting.trigger_severity(trigger), span[0], span[1],
                                  inc.name if inc else None, span[0] - inc.start_s if inc else None))
    return out


def _scaling(spec: Spec, timeline: Timeline, trigger: Trigger) -> list[dict[str, Any]]:
    out = []
    for target in trigger.targets_of(TARGET_HPA):
        for region in timeline.regions:
            ratio = timeline.triggers[(trigger.name, region)].ratio
            value = held(timeline.t, ratio, trigger.for_s) if trigger.for_s > 0 else ratio
            spec_ = autoscaler.hpa(trigger, target, region)["spec"]
            replicas = hpa_trajectory(timeline.t, value, spec_)
            changes = [replicas[0]] + [b for a, b in pairwise(replicas) if b[1] != a[1]]
            out.append({"trigger": trigger.name, "workload": target.workload, "region": region,
                        "replicas": [[t, n] for t, n in changes], "peak": max(n for _, n in replicas),
                        "first_scale_up_s": next((t for t, n in changes[1:] if n > changes[0][1]), None)})
    return out


def _failovers(spec: Spec, timeline: Timeline) -> list[dict[str, Any]]:
    out = []
    for trigger in spec.triggers:
        if not trigger.targets_of("route53"):
            continue
        threshold = route53.failure_threshold(trigger.for_s)
        for region in timeline.regions:
            for moved, back in failover(timeline.t, timeline.healthy[region], threshold):
                out.append({"trigger": trigger.name, "region": region, "moved_at": moved, "back_at": back,
                            "failure_threshold": threshold})
        break  # the health answer folds every route53 trigger of a region: one failover list
    return out


def _families(firings: list[Firing], incidents: list[Incident], end_s: float) -> list[dict[str, Any]]:
    keys = sorted({(f.name, f.slo or f.trigger or "", f.tier or "", f.region, f.severity) for f in firings})
    rows = []
    for name, what, tier, region, severity in keys:
        mine = [f for f in firings
                if (f.name, f.slo or f.trigger or "", f.tier or "", f.region) == (name, what, tier, region)]
        detected = {f.incident: f.detection_delay_s for f in reversed(mine) if f.incident}
        relevant = [i for i in incidents if i.covers(region)]
        rows.append({
            "name": name, "slo_or_trigger": what, "tier": tier or None, "region": region, "severity": severity,
            "first_fired_at": mine[0].fired_at, "last_resolved_at": mine[-1].resolved_at,
            "firings": len(mine),
            "time_firing_s": sum((f.resolved_at if f.resolved_at is not None else end_s) - f.fired_at for f in mine),
            "detected": detected, "missed": [i.name for i in relevant if i.name not in detected],
            "false": sum(1 for f in mine if f.incident is None),
        })
    return rows


def evaluate(spec: Spec, timeline: Timeline, incidents: list[Incident]) -> dict[str, Any]:
    """The backtest's result (the ``--json`` document); see the module docstring and docs/backtest.md."""
    firings = _firings(spec, timeline, incidents)
    end_s = timeline.t[-1] if timeline.t else 0.0
    alerts = [f for f in firings if f.trigger is None]
    triggers = [f for f in firings if f.trigger is not None]
    page = [f for f in firings if f.severity == "page"]
    inc_rows = []
    for inc in incidents:
        hits = sorted((f.detection_delay_s or 0.0, f.name, f.slo or f.trigger, f.region)
                      for f in firings if f.incident == inc.name)
        pages = sorted(f.detection_delay_s or 0.0 for f in page if f.incident == inc.name)
        inc_rows.append({"name": inc.name, "region": inc.region, "start_s": inc.start_s, "end_s": inc.end_s,
                         "detected": bool(hits), "first_detection_s": hits[0][0] if hits else None,
                         "first_page_s": pages[0] if pages else None,
                         "detected_by": [f"{n} {w} {r}" for _, n, w, r in hits]})
    spent = {f"{slo} {region}": (values[-1] if values else None)
             for (slo, region), values in sorted(timeline.budget_spent.items())}
    summary = {
        "duration_s": end_s, "ticks": len(timeline.t), "incidents": len(incidents),
        "detected": sum(1 for r in inc_rows if r["detected"]),
        "paged": sum(1 for r in inc_rows if r["first_page_s"] is not None),
        "missed": [r["name"] for r in inc_rows if not r["detected"]],
        "not_paged": [r["name"] for r in inc_rows if r["first_page_s"] is None],
        "false_pages": sum(1 for f in page if f.incident is None),
        "false_alerts": sum(1 for f in firings if f.incident is None),
        "families": _families(firings, incidents, end_s),
        "budget_spent": spent,
    }
    return {
        "alerts": [_alert_json(f) for f in alerts],
        "triggers": [_alert_json(f) for f in triggers],
        "incidents": inc_rows,
        "failover": _failovers(spec, timeline),
        "scaling": [row for t in spec.triggers for row in _scaling(spec, timeline, t)],
        "summary": summary,
    }


def _alert_json(f: Firing) -> dict[str, Any]:
    out = {"name": f.name, "slo": f.slo, "tier": f.tier, "region": f.region, "severity": f.severity,
           "fired_at": f.fired_at, "resolved_at": f.resolved_at, "incident": f.incident,
           "detection_delay_s": f.detection_delay_s}
    if f.trigger is not None:
        out["trigger"] = f.trigger
    return out
