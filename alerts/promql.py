"""The one small PromQL builder that recording rules, alerts and dashboards share.

Use these functions instead of writing PromQL by hand, so a metric or label
rename in ``slo/conventions.py`` reaches every rule and panel, and the SLI
maths (bad = total - good-bucket) lives in exactly one place.

>>> selector("streamslo_playback_errors_total", kind="rum", region="eu-west-1")
'streamslo_playback_errors_total{kind="rum",region="eu-west-1"}'
>>> le_label(1.0)
'1.0'

Everything here is plain strings: no Prometheus types, no I/O.
"""

from __future__ import annotations

from prometheus_client.utils import floatToGoString

from slo import conventions as c
from slo.model import SLO

__all__ = [
    "and_on",
    "bad_events_rate",
    "error_ratio",
    "events_in_window",
    "fmt_number",
    "good_events_rate",
    "increase",
    "le_label",
    "quantile_gauge",
    "quantile_label",
    "rate",
    "region_selector",
    "selector",
    "sli_error_ratio",
    "sum_by",
    "total_events_rate",
]


def fmt_number(value: float) -> str:
    """A float as PromQL reads it, short and stable (``0.72``, ``14.4``, ``100``)."""
    return f"{value:.12g}"


def le_label(threshold_s: float) -> str:
    """The ``le`` label value prometheus_client writes for bucket edge ``threshold_s``.

    prometheus_client formats edges with ``floatToGoString`` (``1.0 -> "1.0"``,
    ``0.2 -> "0.2"``); a selector must match that text exactly.
    """
    return str(floatToGoString(threshold_s))  # type: ignore[no-untyped-call]


def selector(metric: str, **labels: str) -> str:
    """``metric{a="x",b="y"}`` with labels sorted (deterministic output)."""
    if not labels:
        return metric
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


def rate(series: str, window: str) -> str:
    return f"rate({series}[{window}])"


def increase(series: str, window: str) -> str:
    return f"increase({series}[{window}])"


def sum_by(labels: tuple[str, ...] | list[str], expr: str) -> str:
    return f"sum by ({', '.join(labels)}) ({expr})"


def and_on(left: str, right: str, labels: tuple[str, ...]) -> str:
    """``left and on (labels) right``, each side in parentheses."""
    return f"({left})\nand on ({', '.join(labels)})\n({right})"


def _latency_labels(slo: SLO, kind: str) -> dict[str, str]:
    return {c.LABEL_SLI: slo.sli, c.LABEL_KIND: kind}


def total_events_rate(slo: SLO, window: str, kind: str, extra: dict[str, str] | None = None) -> str:
    """Per-region rate of all events an SLO counts (latency events or playback attempts)."""
    extra = extra or {}
    if slo.is_latency:
        series = selector(c.METRIC_LATENCY_COUNT, **_latency_labels(slo, kind), **extra)
    else:
        series = selector(c.METRIC_ATTEMPTS, **{c.LABEL_KIND: kind}, **extra)
    return sum_by((c.LABEL_REGION,), rate(series, window))


def good_events_rate(slo: SLO, window: str, kind: str) -> str:
    """Per-region rate of good latency events: the histogram bucket at the threshold."""
    if slo.threshold_s is None:
        raise ValueError(f"SLO {slo.name!r} has no latency threshold")
    labels = _latency_labels(slo, kind) | {c.LABEL_LE: le_label(slo.threshold_s)}
    return sum_by((c.LABEL_REGION,), rate(selector(c.METRIC_LATENCY_BUCKET, **labels), window))


def bad_events_rate(slo: SLO, window: str, kind: str) -> str:
    """Per-region rate of bad events: count - good bucket, or fatal errors."""
    if slo.is_latency:
        return f"(\n  {total_events_rate(slo, window, kind)}\n  -\n  {good_events_rate(slo, window, kind)}\n)"
    return sum_by((c.LABEL_REGION,), rate(selector(c.METRIC_ERRORS, **{c.LABEL_KIND: kind}), window))


def sli_error_ratio(slo: SLO, window: str, kind: str) -> str:
    """Per-region SLI error ratio over ``window``: bad events / all events.

    For a latency SLO the bad events are ``count - bucket{le=threshold}``, exact
    because the bucket edges include every threshold. No traffic gives NaN
    (0/0), which never fires an alert.
    """
    return f"{bad_events_rate(slo, window, kind)}\n/\n{total_events_rate(slo, window, kind)}"


def events_in_window(sli: str, window: str, kind: str) -> str:
    """Per-region number of events an SLI counted over ``window`` (low-traffic guards).

    Latency SLIs count histogram observations; the error SLI counts playback
    attempts.
    """
    if sli == c.SLI_ERRORS:
        series = selector(c.METRIC_ATTEMPTS, **{c.LABEL_KIND: kind})
    else:
        series = selector(c.METRIC_LATENCY_COUNT, **{c.LABEL_SLI: sli, c.LABEL_KIND: kind})
    return sum_by((c.LABEL_REGION,), increase(series, window))


def error_ratio(window: str, kind: str) -> str:
    """Per-region fatal-error ratio (errors / attempts) over ``window``, for triggers."""
    errors = sum_by((c.LABEL_REGION,), rate(selector(c.METRIC_ERRORS, **{c.LABEL_KIND: kind}), window))
    attempts = sum_by((c.LABEL_REGION,), rate(selector(c.METRIC_ATTEMPTS, **{c.LABEL_KIND: kind}), window))
    return f"{errors}\n/\n{attempts}"


def quantile_gauge(sli: str, quantile: float, window: str, kind: str, **extra: str) -> str:
    """Selector for the in-stream sketch quantile gauge (``quantile="0.95"``)."""
    labels = {
        c.LABEL_SLI: sli,
        c.LABEL_KIND: kind,
        c.LABEL_QUANTILE: quantile_label(quantile),
        c.LABEL_WINDOW: window,
    }
    return selector(c.METRIC_LATENCY_QUANTILE, **labels, **extra)


def quantile_label(quantile: float) -> str:
    """The ``quantile`` label value the exposition writes (``0.95``, ``0.5``)."""
    return fmt_number(quantile)


def region_selector(metric: str, region_var: str = "$region", **labels: str) -> str:
    """``metric{...,region=~"$region"}``: a dashboard selector following the region variable."""
    inner = [f'{k}="{v}"' for k, v in sorted(labels.items())]
    inner.append(f'{c.LABEL_REGION}=~"{region_var}"')
    return f"{metric}{{{','.join(sorted(inner))}}}"
