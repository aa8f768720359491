"""Small grafanalib helpers shared by the generated dashboards.

Use :func:`board` to assemble panels into a dashboard dict, and the panel
helpers (:func:`timeseries`, :func:`stat`, :func:`bargauge`) so every panel
gets the same datasource, layout and query shape. Returns plain JSON-ready
dicts (grafanalib's ``to_json_data`` run through its encoder).

>>> target("up", "{{instance}}", "A")["expr"]
'up'
"""

from __future__ import annotations

import json
from typing import Any

from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

__all__ = ["DATASOURCE", "DATASOURCE_UID", "bargauge", "board", "region_template", "stat", "target", "timeseries"]

DATASOURCE_UID = "streamslo-prometheus"
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
WIDTH = 24


def target(expr: str, legend: str, ref_id: str) -> dict[str, Any]:
    return {"expr": expr, "legendFormat": legend, "refId": ref_id, "datasource": DATASOURCE}


def _targets(queries: list[tuple[str, str]]) -> list[g.Target]:
    return [
        g.Target(expr=expr, legendFormat=legend, refId=chr(ord("A") + i), datasource=DATASOURCE)
        for i, (expr, legend) in enumerate(queries)
    ]


def _steps(thresholds: list[tuple[float, str]]) -> list[g.Threshold]:
    steps = [g.Threshold("green", 0, 0.0)]
    steps += [g.Threshold(color, i + 1, value) for i, (value, color) in enumerate(thresholds)]
    return steps


def timeseries(
    title: str,
    description: str,
    queries: list[tuple[str, str]],
    unit: str,
    thresholds: list[tuple[float, str]] | None = None,
) -> g.TimeSeries:
    """A time-series panel; ``thresholds`` (value, color) are drawn as dashed lines."""
    return g.TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=_targets(queries),
        unit=unit,
        thresholds=_steps(thresholds or []),
        thresholdsStyleMode="dashed" if thresholds else "off",
        legendDisplayMode="table",
        legendPlacement="right",
    )


def stat(title: str, description: str, queries: list[tuple[str, str]], unit: str) -> g.Stat:
    return g.Stat(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=_targets(queries),
        format=unit,
        reduceCalc="lastNotNull",
    )


def bargauge(
    title: str, description: str, queries: list[tuple[str, str]], unit: str, low: float, high: float
) -> g.BarGauge:
    return g.BarGauge(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=_targets(queries),
        format=unit,
        min=low,
        max=high,
        calc="lastNotNull",
        displayMode="gradient",
        orientation="horizontal",
        thresholds=[g.Threshold("red", 0, 0.0), g.Threshold("orange", 1, 0.25), g.Threshold("green", 2, 0.5)],
    )


def region_template(query_metric: str, regions: tuple[str, ...]) -> g.Template:
    """The ``$region`` variable: regions that report, multi-select, "All" by default."""
    del regions  # values come from Prometheus so "other" and new regions appear
    return g.Template(
        name="region",
        label="Region",
        query=f"label_values({query_metric}, region)",
        dataSource=DATASOURCE,
        includeAll=True,
        multi=True,
        allValue=".*",
        default="$__all",
        refresh=2,
        sort=1,
    )


def board(
    uid: str,
    title: str,
    description: str,
    tags: list[str],
    panels: list[Any],
    templates: list[g.Template],
) -> dict[str, Any]:
    """Lay ``panels`` out on a 2-column grid and return the dashboard JSON dict."""
    placed, x, y = [], 0, 0
    for i, panel in enumerate(panels):
        if isinstance(panel, g.RowPanel):
            x, y = 0, y + (8 if x else 0)
            panel.gridPos = g.GridPos(h=1, w=WIDTH, x=0, y=y)
            y += 1
        else:
            panel.gridPos = g.GridPos(h=8, w=WIDTH // 2, x=x, y=y)
            x, y = (WIDTH // 2, y) if x == 0 else (0, y + 8)
        panel.id = i + 1
        placed.append(panel)
    dash = g.Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=tags,
        panels=placed,
        templating=g.Templating(list=templates),
        time=g.Time("now-1h", "now"),
        refresh="30s",
        timezone="utc",
        editable=False,
    ).auto_panel_ids()
    data: dict[str, Any] = json.loads(json.dumps(dash.to_json_data(), cls=DashboardEncoder, sort_keys=True))
    return grafana_clean(data)


def row(title: str) -> g.RowPanel:
    return g.RowPanel(title=title)


# grafanalib 0.7.1 still writes fields of the pre-schema (Grafana < 7) JSON
# model that Grafana's dashboard schema (grafana-foundation-sdk 0.0.21) does
# not define; Grafana ignores them, the schema rejects them. Removed here:
_LEGACY_DASHBOARD = ("__inputs", "hideControls", "rows", "sharedCrosshair", "style")
_LEGACY_PANEL = ("editable", "error")
_ROW_KEYS = ("collapsed", "datasource", "gridPos", "id", "panels", "repeat", "title", "type")
_LEGACY_TEMPLATE = ("tagValuesQuery", "tagsQuery", "useTags")


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _clean_thresholds(field_config: dict[str, Any]) -> None:
    thresholds = field_config.get("defaults", {}).get("thresholds")
    if thresholds:
        # Threshold steps carry graph-panel fields (index, line, op, yaxis) and
        # the base step's value as the string "null"; the schema wants
        # {color, value: number | null}.
        thresholds["steps"] = [
            {"color": s["color"], "value": None if s.get("value") in (None, "null") else s["value"]}
            for s in thresholds.get("steps", [])
        ]
    field_config.setdefault("overrides", [])


def grafana_clean(data: dict[str, Any]) -> dict[str, Any]:
    """Make grafanalib's dashboard JSON valid against Grafana's dashboard schema.

    Drops null-valued keys and the legacy fields listed above, rebuilds
    threshold steps as ``{color, value}``, keeps rows to the row fields.
    """
    out: dict[str, Any] = _drop_none({k: v for k, v in data.items() if k not in _LEGACY_DASHBOARD})
    out.get("timepicker", {}).pop("time_options", None)
    panels = []
    for panel in out.get("panels", []):
        if panel.get("type") == "row":
            panels.append({k: v for k, v in panel.items() if k in _ROW_KEYS})
            continue
        panel = {k: v for k, v in panel.items() if k not in _LEGACY_PANEL}
        if "fieldConfig" in panel:
            _clean_thresholds(panel["fieldConfig"])
        panels.append(panel)
    out["panels"] = panels
    for variable in out.get("templating", {}).get("list", []):
        for key in _LEGACY_TEMPLATE:
            variable.pop(key, None)
        if isinstance(variable.get("current"), dict):
            variable["current"].pop("tags", None)
    return out
