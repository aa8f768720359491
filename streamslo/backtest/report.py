"""The backtest's HTML report: one self-contained page, inline SVG plots, no scripts.

Use :func:`write_report` after :func:`streamslo.backtest.run.backtest`. Per
region: the burn rate of every tier against its factor (for the SLOs that
came near one), the quantiles against their objectives, the trigger states,
health answers and failovers, and the replicas the HPA model would have set.
Labelled incidents are shaded on every plot. Tables list the alerts, the
incidents and the summary.

Example::

    write_report(outcome, Path("report/"))   # writes report/index.html
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamslo.backtest.run import Outcome

__all__ = ["chart", "render", "write_report"]

W, H, PAD = 860, 170, 44
MAX_POINTS = 600
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")
Series = tuple[str, Sequence[float | None], str]


def _bins(t: Sequence[float], values: Sequence[float | None]) -> list[tuple[float, float | None]]:
    """At most MAX_POINTS points, each the maximum of its bin (a short spike stays visible)."""
    step = max(1, -(-len(t) // MAX_POINTS))
    out = []
    for i in range(0, len(t), step):
        chunk = [v for v in values[i:i + step] if v is not None]
        out.append((t[i], max(chunk) if chunk else None))
    return out


def chart(title: str, t: Sequence[float], series: Sequence[Series], *, hlines: Sequence[tuple[str, float, str]] = (),
          bands: Sequence[tuple[float, float]] = (), y_max: float | None = None, unit: str = "") -> str:
    """One SVG line chart over ``t`` (seconds); ``hlines`` dashed limits, ``bands`` shaded spans."""
    if not t:
        return ""
    x0, x1 = t[0], max(t[-1], t[0] + 1)
    top = y_max or max([v for _, vs, _ in series for v in vs if v is not None] + [h for _, h, _ in hlines] + [1e-9])
    top *= 1.1

    def x(v: float) -> float:
        return PAD + (v - x0) / (x1 - x0) * (W - 2 * PAD)

    def y(v: float) -> float:
        return H - 20 - min(v, top) / top * (H - 40)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img">',
             f'<text x="{PAD}" y="14" font-size="13" font-weight="bold">{html.escape(title)}</text>']
    for a, b in bands:
        parts.append(f'<rect x="{x(max(a, x0)):.1f}" y="20" width="{max(1.0, x(min(b, x1)) - x(max(a, x0))):.1f}" '
                     f'height="{H - 40}" fill="#f4c7c3" opacity="0.5"/>')
    parts.append(f'<line x1="{PAD}" y1="{H - 20}" x2="{W - PAD}" y2="{H - 20}" stroke="#999"/>')
    for frac in (0.0, 0.5, 1.0):
        tv = x0 + frac * (x1 - x0)
        parts.append(f'<text x="{x(tv):.1f}" y="{H - 5}" font-size="10" text-anchor="middle">{_clock(tv)}</text>')
    parts.append(f'<text x="2" y="{y(top / 1.1) + 4:.1f}" font-size="10">{top / 1.1:.3g}{unit}</text>')
    for label, level, color in hlines:
        parts.append(f'<line x1="{PAD}" y1="{y(level):.1f}" x2="{W - PAD}" y2="{y(level):.1f}" stroke="{color}" '
                     f'stroke-dasharray="5,4"/><text x="{W - PAD + 2}" y="{y(level) + 4:.1f}" font-size="10" '
                     f'fill="{color}">{html.escape(label)}</text>')
    for j, (label, values, color) in enumerate(series):
        path, pen = [], "M"
        for tv, v in _bins(t, values):
            if v is None:
                pen = "M"
                continue
            path.append(f"{pen}{x(tv):.1f},{y(v):.1f}")
            pen = "L"
        parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="1.4"/>')
        parts.append(f'<text x="{PAD + 8 + 150 * j}" y="32" font-size="11" fill="{color}">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _clock(seconds: float) -> str:
    h, rem = divmod(int(seconds), 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}"


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list | dict):
        return ", ".join(f"{k}: {_cell(x)}" for k, x in v.items()) if isinstance(v, dict) else ", ".join(map(str, v))
    return str(v)


def _region_charts(outcome: Outcome, region: str) -> list[str]:
    tl, spec = outcome.timeline, outcome.timeline.spec
    bands = [(i.start_s, i.end_s) for i in outcome.header.incidents if i.covers(region)]
    out = []
    for slo in sorted(spec.slos, key=lambda s: s.name):
        tiers = spec.resolved_tiers(slo)
        series = [tl.tiers[(slo.name, r.name, region)] for r in tiers]
        peak = max([v for s in series for v in s.long if v is not None] + [0.0])
        if peak < 0.5 * min(r.factor for r in tiers) and not any(any(s.holds) for s in series):
            continue  # far from every factor: no plot, the table says it never fired
        out.append(chart(f"{region}: {slo.name} burn rate (long window) per tier", tl.t,
                         [(r.name, s.long, COLORS[i % len(COLORS)]) for i, (r, s) in enumerate(zip(tiers, series,
                                                                                                 strict=True))],
                         hlines=[(f"{r.name} {r.factor:g}x", r.factor, COLORS[i % len(COLORS)])
                                 for i, r in enumerate(tiers)], bands=bands,
                         y_max=max(r.factor for r in tiers) * 1.5, unit="x"))
    latency = [s for s in spec.slos if s.is_latency and s.threshold_s is not None]
    by_sli: dict[str, list[Any]] = {}
    for s in latency:
        by_sli.setdefault(s.sli, []).append(s)
    for sli, slos in by_sli.items():
        lines = [(f"p{s.quantile * 100:g}" if s.quantile else s.name,
                   [None if v is None else v * 1000 for v in tl.quantiles[(s.name, region)]], COLORS[i])
                  for i, s in enumerate(slos)]
        out.append(chart(f"{region}: {sli} quantiles ({tl.window_s:g}s window) vs objectives", tl.t, lines,
                         hlines=[(f"{s.threshold_s * 1000:g} ms", s.threshold_s * 1000, COLORS[i])
                                 for i, s in enumerate(slos)],
                         bands=bands, unit=" ms"))
    states: list[Series] = []
    for i, trig in enumerate(spec.triggers):
        ts = tl.triggers[(trig.name, region)]
        states.append((f"{trig.name} condition", [i * 2 + 0.5 * c for c in ts.condition], COLORS[i * 2 % 7]))
        states.append((f"{trig.name} breached", [i * 2 + 1.0 * a for a in ts.active], COLORS[(i * 2 + 1) % 7]))
    states.append(("unhealthy", [len(spec.triggers) * 2 + (0.0 if h else 1.0) for h in tl.healthy[region]],
                   "#000000"))
    out.append(chart(f"{region}: trigger states and health answer (steps)", tl.t, states, bands=bands))
    for row in outcome.result["scaling"]:
        if row["region"] != region:
            continue
        t_r, n_r = _steps(row["replicas"], tl.t[-1] if tl.t else 0.0)
        out.append(chart(f"{region}: {row['workload']} replicas (HPA model, {row['trigger']})", t_r,
                         [("replicas", n_r, COLORS[0])], bands=bands))
    return out


def _steps(changes: list[list[float]], end: float) -> tuple[list[float], list[float | None]]:
    t: list[float] = []
    n: list[float | None] = []
    for (t0, v), nxt in zip(changes, [*changes[1:], [end, changes[-1][1]]], strict=True):
        t += [t0, nxt[0]]
        n += [v, v]
    return t, n


CSS = ("body{font-family:sans-serif;margin:16px;max-width:940px}table{border-collapse:collapse;font-size:12px;"
       "margin-bottom:12px}td,th{border:1px solid #ccc;padding:2px 6px}h2{margin-top:28px}")


def render(outcome: Outcome) -> str:
    """The report page as a string."""
    r, s = outcome.result, outcome.result["summary"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>streamslo backtest</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>Backtest: {html.escape(s['source'])}</h1>",
             f"<p>spec <b>{html.escape(outcome.timeline.spec.name)}</b>, {s['duration_s'] / 3600:.3g} h, "
             f"{s['beacons']} beacons, {s['events']} events, evaluated every {s['eval_interval_s']:g} s; "
             f"{s['incidents']} incidents, {s['detected']} detected, {s['paged']} paged, "
             f"<b>{s['false_pages']} false pages</b>.</p>",
             "<h2>Incidents</h2>", _table(r["incidents"], ["name", "region", "start_s", "end_s", "first_detection_s",
                                                            "first_page_s", "detected_by"]),
             "<h2>Alerts and triggers</h2>",
             _table(s["families"], ["name", "slo_or_trigger", "tier", "region", "severity", "first_fired_at",
                                    "last_resolved_at", "firings", "time_firing_s", "detected", "missed", "false"]),
             "<h2>Failover</h2>", _table(r["failover"], ["trigger", "region", "moved_at", "back_at"]),
             "<h2>Scaling</h2>", _table(r["scaling"], ["trigger", "workload", "region", "peak", "first_scale_up_s"]),
             "<h2>Error budget spent (share of the period's budget)</h2>",
             _table([{"slo region": k, "spent": v} for k, v in s["budget_spent"].items()], ["slo region", "spent"])]
    for region in outcome.timeline.regions:
        parts.append(f"<h2>{html.escape(region)}</h2>")
        parts += [f"<div>{c}</div>" for c in _region_charts(outcome, region)]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(outcome: Outcome, directory: Path) -> Path:
    """Write ``index.html`` into ``directory`` (created); return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "index.html"
    path.write_text(render(outcome))
    return path
