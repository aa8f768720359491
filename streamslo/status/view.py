"""The status page's JSON (``GET /api/status``) from stage 2's snapshots.

:class:`StatusView` turns a :class:`~slo.stage2.Snapshot` into the JSON that
``app.js`` renders, and keeps each region's short trend (p95/p99 of the first
latency SLI over the shortest window, one point per recording). The embedded
engine (``streamslo/engine.py``) owns the runtime: it records a trend point
every ``trend_every_s`` and asks for the JSON with the current snapshot.

Example::

    view = StatusView(spec)
    view.record_trend(snapshot)          # at most every view.trend_every_s
    view.status(snapshot, incidents={"eu-west-1"})

The JSON::

    {"spec": "live-streaming", "generated_at": 1764151234.5, "kind": "rum",
     "windows": ["1m", "5m", "1h"],
     "tiers": [{"name": "fast", "long": "1h", "short": "5m", "factor": 14.4, "severity": "page"}],
     "demo": null | {"incidents": ["eu-west-1"]},
     "regions": [{
       "region": "eu-west-1", "status": "ok" | "warn" | "breach" | "no_data",
       "incident": false, "events_1m": 950, "freshness_s": 0.8,
       "latency": [{"sli": "ttff", "quantile": 0.95, "threshold_ms": 200.0,
                    "values_ms": {"1m": 141.2, "5m": null}, "breach": {"1m": false, "5m": false}}],
       "errors": {"max_ratio": 0.01, "ratio": {"1m": 0.004, "5m": 0.002},
                  "breach": {"1m": false, "5m": false}} | null,
       "ratios": [{"slo": "rebuffering", "sli": "rebuffering", "max_ratio": 0.005,
                   "ratio": {"1m": 0.003, "5m": null}, "breach": {"1m": false, "5m": false}}],
       "slos": [{"slo": "ttff-p95", "budget_remaining": 0.98,
                 "tiers": [{"tier": "fast", "factor": 14.4, "long": 0.1, "short": 0.3, "firing": false}]}],
       "triggers": [{"name": "scale_out", "action": "...", "condition": true, "since_s": 35.0,
                     "for_s": 120.0, "firing": false}],
       "trend": {"window": "1m", "t": [...], "series": {"ttff p95": [...], "ttff p99": [...]},
                 "thresholds_ms": {"ttff p95": 200.0, "ttff p99": 300.0}}}]}

Latency rows are every latency SLO (``live_latency`` too). Error ratios are
errors / attempts per window (``SeriesSnapshot.error_ratio``); ``ratios`` are
the other ratio and time-ratio SLOs (exits before start, rebuffering): stage
2's bad / total per quantile window (``SLOSnapshot.ratios``). A ratio counts
as a breach only with at least ``low_traffic_min_events`` attempts (seconds
watched, for rebuffering) in its window. Status of a region: ``breach`` when a burn-rate tier or a trigger fires or
the shortest window is above a threshold; ``warn`` when a trigger's condition
holds or a longer window is above a threshold; ``no_data`` without events in
the shortest window.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from slo import conventions as c
from slo.durations import format_duration
from slo.model import Spec
from slo.stage2 import RegionSnapshot, SeriesSnapshot, Snapshot

TREND_POINTS = 150  # 5 minutes at one point per 2 s


class StatusView:
    """The status JSON of one spec, and the trend points recorded so far."""

    def __init__(self, spec: Spec, *, trend_every_s: float = 2.0) -> None:
        self.spec = spec
        self.trend_every_s = trend_every_s
        self._trend_at = 0.0
        self._trend: dict[str, deque[tuple[float, float | None, float | None]]] = {}
        self._trend_sli = c.SLI_TTFF if c.SLI_TTFF in spec.latency_slis or not spec.latency_slis else spec.latency_slis[0]
        self._trend_window = min(spec.quantile_windows_s)

    def trend_due(self, now: float) -> bool:
        """Whether ``trend_every_s`` has passed since the last trend point."""
        return now - self._trend_at >= self.trend_every_s

    def record_trend(self, snap: Snapshot) -> None:
        """Append each region's p95/p99 (shortest window) at ``snap.now`` to its trend."""
        self._trend_at = snap.now
        for name, region in snap.regions.items():
            series = region.series.get((self._trend_sli, self.spec.evaluate_kind))
            q = series.quantiles.get(self._trend_window, {}) if series else {}
            points = self._trend.setdefault(name, deque(maxlen=TREND_POINTS))
            points.append((snap.now, q.get(0.95), q.get(0.99)))

    def status(self, snap: Snapshot, incidents: set[str] | None = None) -> dict[str, Any]:
        """The status page's JSON (shape in the module docstring); ``incidents`` None: no demo."""
        names = list(self.spec.regions) + sorted(set(snap.regions) - set(self.spec.regions))
        return {
            "spec": self.spec.name,
            "generated_at": snap.now,
            "kind": self.spec.evaluate_kind,
            "windows": [format_duration(w) for w in self.spec.quantile_windows_s],
            "tiers": [
                {"name": t.name, "long": format_duration(t.long_s), "short": format_duration(t.short_s),
                 "factor": t.factor, "severity": t.severity}
                for t in self.spec.tiers
            ],
            "demo": None if incidents is None else {"incidents": sorted(incidents)},
            "regions": [
                region_status(self.spec, name, snap.regions.get(name), snap.now,
                              self._trend_json(name), incident=bool(incidents and name in incidents))
                for name in names
            ],
        }

    def _trend_json(self, region: str) -> dict[str, Any]:
        points = list(self._trend.get(region, ()))
        sli = self._trend_sli
        thresholds = {
            f"{sli} p{round(s.quantile * 100)}": _ms(s.threshold_s)
            for s in self.spec.slos
            if s.sli == sli and s.quantile in (0.95, 0.99) and s.threshold_s is not None
        }
        return {
            "window": format_duration(self._trend_window),
            "t": [p[0] for p in points],
            "series": {f"{sli} p95": [_ms(p[1]) for p in points], f"{sli} p99": [_ms(p[2]) for p in points]},
            "thresholds_ms": thresholds,
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def region_status(
    spec: Spec,
    name: str,
    region: RegionSnapshot | None,
    now: float,
    trend: dict[str, Any],
    *,
    incident: bool = False,
) -> dict[str, Any]:
    """One region's card of the status JSON; ``region`` None means no data yet."""
    windows = spec.quantile_windows_s
    labels = [format_duration(w) for w in windows]
    kind = spec.evaluate_kind
    latency, errors, ratios = [], None, []
    for slo in spec.slos:
        series = region.series.get((slo.sli, kind)) if region else None
        if slo.is_latency and slo.threshold_s is not None and slo.quantile is not None:
            values = {
                label: _ms(series.quantiles.get(w, {}).get(slo.quantile) if series else None)
                for w, label in zip(windows, labels, strict=True)
            }
            threshold_ms = _ms(slo.threshold_s)
            latency.append({
                "sli": slo.sli, "quantile": slo.quantile, "threshold_ms": threshold_ms, "values_ms": values,
                "breach": {k: v is not None and threshold_ms is not None and v > threshold_ms for k, v in values.items()},
            })
        elif slo.sli == c.SLI_ERRORS:
            errors = _errors_row(spec, series, slo.budget) if region is not None else None
        else:
            ratios.append(_ratio_row(spec, region, slo.name, slo.sli, slo.budget))
    slos = []
    for slo in spec.slos:
        s = region.slos.get(slo.name) if region else None
        slos.append({
            "slo": slo.name,
            "budget_remaining": s.budget_remaining if s and s.events.get(spec.period_s) else None,
            "tiers": [
                {"tier": t.tier, "factor": t.factor, "long": t.long_burn if t.long_events else None,
                 "short": t.short_burn if t.long_events else None, "firing": t.firing}
                for t in (s.tiers if s else ())
            ],
        })
    triggers = []
    for trig in spec.triggers:
        state = region.triggers.get(trig.name) if region else None
        triggers.append({
            "name": trig.name, "action": trig.action, "for_s": trig.for_s,
            "condition": bool(state and state.condition), "firing": bool(state and state.active),
            "since_s": (now - state.since) if state and state.since is not None else None,
        })
    events = 0
    if region:
        for sli in spec.latency_slis:
            series = region.series.get((sli, kind))
            events += series.window_events.get(windows[0], 0) if series else 0
    return {
        "region": name,
        "status": _overall([*latency, *([errors] if errors else []), *ratios], slos, triggers, labels[0], events),
        "incident": incident,
        "events_1m": events,
        "freshness_s": region.freshness_s if region else None,
        "latency": latency,
        "errors": errors,
        "ratios": ratios,
        "slos": slos,
        "triggers": triggers,
        "trend": trend,
    }


def _errors_row(spec: Spec, series: SeriesSnapshot | None, budget: float) -> dict[str, Any]:
    """The errors SLO's row: errors / attempts per quantile window against ``budget``.

    Straight from the window sums, so the shortest (trigger) window has a
    ratio too, not only the alerting windows. The spec's low-traffic guard
    applies, as for burn-rate tiers: 2 failed starts among the first 50
    attempts after a start-up are noise, not a breach.
    """
    windows = spec.quantile_windows_s
    labels = [format_duration(w) for w in windows]
    ratios = {label: series.error_ratio(w) if series else None for w, label in zip(windows, labels, strict=True)}
    enough = {
        label: series is not None and series.window_events.get(w, 0) >= spec.low_traffic_min_events
        for w, label in zip(windows, labels, strict=True)
    }
    return {"max_ratio": budget, "ratio": ratios,
            "breach": {k: v is not None and enough[k] and v > budget for k, v in ratios.items()}}


def _ratio_row(spec: Spec, region: RegionSnapshot | None, slo_name: str, sli: str, budget: float) -> dict[str, Any]:
    """A ratio or time-ratio SLO's row: stage 2's bad / total per quantile window against ``budget``.

    ``region`` None (no data yet): every window's ratio is None.
    A window's ratio counts as a breach only with ``low_traffic_min_events`` in it:
    attempts for exits before start (read on the errors series, which counts
    every playback outcome), seconds watched for rebuffering.
    """
    windows = spec.quantile_windows_s
    labels = [format_duration(w) for w in windows]
    state = region.slos.get(slo_name) if region else None
    series = region.series.get((c.SLI_ERRORS if sli in c.RATIO_SLIS else sli, spec.evaluate_kind)) if region else None
    ratios = {label: state.ratios.get(w) if state else None for w, label in zip(windows, labels, strict=True)}
    enough = {
        label: series is not None and series.window_events.get(w, 0) >= spec.low_traffic_min_events
        for w, label in zip(windows, labels, strict=True)
    }
    return {"slo": slo_name, "sli": sli, "max_ratio": budget, "ratio": ratios,
            "breach": {k: v is not None and enough[k] and v > budget for k, v in ratios.items()}}


def _overall(
    rows: list[dict[str, Any]],
    slos: list[dict[str, Any]],
    triggers: list[dict[str, Any]],
    shortest: str,
    events: int,
) -> str:
    """The region's status from its latency and ratio rows (each with a ``breach`` per window), tiers and triggers."""
    firing = any(t["firing"] for s in slos for t in s["tiers"]) or any(t["firing"] for t in triggers)
    if firing or any(r["breach"].get(shortest) for r in rows):
        return "breach"
    if any(t["condition"] for t in triggers) or any(any(r["breach"].values()) for r in rows):
        return "warn"
    return "ok" if events else "no_data"
