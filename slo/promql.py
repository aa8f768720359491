r"""The one small PromQL builder that recording rules, alerts and dashboards share.

Use these functions instead of writing PromQL by hand, so a metric or label
rename in ``slo/conventions.py`` reaches every rule and panel, and the SLI
maths (bad = total - good-bucket) lives in exactly one place.

>>> selector("streamslo_playback_errors_total", kind="rum", region="eu-west-1")
'streamslo_playback_errors_total{kind="rum",region="eu-west-1"}'
>>> le_label(1.0)
'1.0'
>>> print(le_pattern(1.0))
1(\.0*)?

Everything here is plain strings: no Prometheus types, no I/O.
"""

from __future__ import annotations

import math

from slo import conventions as c
from slo.model import SLO

__all__ = [
    "and_on",
    "bad_events_rate",
    "error_ratio",
    "events_in_window",
    "fmt_number",
    "good_bucket",
    "good_events_rate",
    "increase",
    "le_label",
    "le_pattern",
    "max_by",
    "quantile_gauge",
    "quantile_label",
    "rate",
    "region_selector",
    "selector",
    "selector_re",
    "sli_error_ratio",
    "sum_by",
    "total_events",
    "total_events_rate",
]


def fmt_number(value: float) -> str:
    """A float as PromQL reads it, short and stable (``0.72``, ``14.4``, ``100``)."""
    return f"{value:.12g}"


def le_label(threshold_s: float) -> str:
    """The ``le`` label value prometheus_client writes for bucket edge ``threshold_s``.

    prometheus_client formats edges like Go's ``strconv.FormatFloat(f, 'g')``
    (``1.0 -> "1.0"``, ``0.2 -> "0.2"``, ``1e7 -> "1e+07"``); a selector must
    match that text exactly, and the exposition writes its edges with this
    same function. ``tests/test_promql.py`` checks it against client_python.
    """
    value = float(threshold_s)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:  # Go switches to an exponent sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+0{dot - 1}"
    return text


def le_pattern(threshold_s: float) -> str:
    r"""An RE2 pattern matching every decimal spelling of bucket edge ``threshold_s``.

    Use it (through :func:`good_bucket`) instead of ``le="..."``: exporters
    format edges differently (prometheus_client writes ``1.0``, Go's client
    ``1``, some pad with zeros, ``0.20``), and a string selector that misses
    the exporter's spelling silently counts every event as bad. Exponent
    spellings (``2e-01``) are not matched: clients use them only outside 1e-4..1e21.

    >>> le_pattern(0.2), le_pattern(300.0)
    ('0\\.20*', '300(\\.0*)?')
    """
    text = f"{threshold_s:.12f}".rstrip("0").rstrip(".")
    whole, _, fraction = text.partition(".")
    if fraction:
        return f"{whole}\\.{fraction}0*"
    return f"{whole}(\\.0*)?"


def selector(metric: str, **labels: str) -> str:
    """``metric{a="x",b="y"}`` with labels sorted (deterministic output)."""
    return selector_re(metric, labels, {})


def _quote(value: str) -> str:
    """A PromQL double-quoted string: backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def selector_re(metric: str, labels: dict[str, str], patterns: dict[str, str]) -> str:
    r"""``metric{a="x",le=~"p"}``: equality and regex matchers, sorted by label.

    >>> print(selector_re("m", {"a": "x"}, {"le": le_pattern(1.0)}))
    m{a="x",le=~"1(\\.0*)?"}
    """
    matchers = [(k, f'{k}="{v}"') for k, v in labels.items()]
    matchers += [(k, f"{k}=~{_quote(v)}") for k, v in patterns.items()]
    if not matchers:
        return metric
    return f"{metric}{{{','.join(m for _, m in sorted(matchers))}}}"


def rate(series: str, window: str) -> str:
    return f"rate({series}[{window}])"


def increase(series: str, window: str) -> str:
    return f"increase({series}[{window}])"


def sum_by(labels: tuple[str, ...] | list[str], expr: str) -> str:
    return f"sum by ({', '.join(labels)}) ({expr})"


def max_by(labels: tuple[str, ...] | list[str], expr: str) -> str:
    return f"max by ({', '.join(labels)}) ({expr})"


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
    return sum_by((c.LABEL_REGION,), rate(good_bucket(slo, kind), window))


def good_bucket(slo: SLO, kind: str) -> str:
    """The histogram bucket series at the SLO's threshold, whatever the ``le`` spelling."""
    if slo.threshold_s is None:
        raise ValueError(f"SLO {slo.name!r} has no latency threshold")
    patterns = {c.LABEL_LE: le_pattern(slo.threshold_s)}
    return selector_re(c.METRIC_LATENCY_BUCKET, _latency_labels(slo, kind), patterns)


def total_events(slo: SLO, kind: str) -> str:
    """The counter of every event an SLO counts: latency observations or playback attempts."""
    if slo.is_latency:
        return selector(c.METRIC_LATENCY_COUNT, **_latency_labels(slo, kind))
    return selector(c.METRIC_ATTEMPTS, **{c.LABEL_KIND: kind})


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
