r"""The one small PromQL builder that recording rules, alerts and dashboards share.

Use these functions instead of writing PromQL by hand, so a metric or label
rename in ``slo/conventions.py`` reaches every rule and panel, and the SLI
maths lives in exactly one place: per SLI kind (``slo.model.sli_kind``),
:func:`sli_bad` and :func:`sli_total` are the bad and all events:

- latency: bad = histogram count - bucket at the threshold, total = count;
- ratio: bad = fatal errors or exits before start, total = playback attempts;
- time ratio (rebuffering): bad = stall seconds, total = stall + played seconds.

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
from collections.abc import Callable

from slo import conventions as c
from slo.model import SLO, sli_kind

__all__ = [
    "RATIO_COUNTERS",
    "REGION_ONLY",
    "RangeFn",
    "and_on",
    "events_in_window",
    "fmt_number",
    "good_bucket",
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
    "sli_bad",
    "sli_error_ratio",
    "sli_ratio",
    "sli_total",
    "sum_by",
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


RangeFn = Callable[[str, str], str]

# The counters of every ratio and time-ratio SLI: (bad, total), each side the
# sum of its counters. A latency SLI has none here: its total is its histogram
# count and its bad events are that count minus the bucket at the threshold.
RATIO_COUNTERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    c.SLI_ERRORS: ((c.METRIC_ERRORS,), (c.METRIC_ATTEMPTS,)),
    c.SLI_EXITS_BEFORE_START: ((c.METRIC_EXITS_BEFORE_START,), (c.METRIC_ATTEMPTS,)),
    c.SLI_REBUFFERING: ((c.METRIC_REBUFFER_SECONDS,), (c.METRIC_REBUFFER_SECONDS, c.METRIC_PLAYED_SECONDS)),
}

REGION_ONLY = (c.LABEL_REGION,)


def _read(metric: str, labels: dict[str, str], region_re: str) -> str:
    """A selector, restricted to regions matching ``region_re`` when it is set (dashboards: ``$region``)."""
    return selector_re(metric, labels, {c.LABEL_REGION: region_re} if region_re else {})


def _summed(
    metrics: tuple[str, ...], labels: dict[str, str], fn: RangeFn, window: str, by: tuple[str, ...], region_re: str
) -> str:
    """``sum by (by) (fn(m[window]))`` for one counter; the parenthesised sum of those for several."""
    parts = [sum_by(by, fn(_read(m, labels, region_re), window)) for m in metrics]
    if len(parts) == 1:
        return parts[0]
    return "(\n  " + "\n  +\n  ".join(parts) + "\n)"


def _latency_labels(sli: str, kind: str) -> dict[str, str]:
    return {c.LABEL_SLI: sli, c.LABEL_KIND: kind}


def sli_total(
    sli: str, fn: RangeFn, window: str, kind: str, by: tuple[str, ...] = REGION_ONLY, region_re: str = ""
) -> str:
    """All events of ``sli`` over ``window`` (``fn`` is :func:`rate` or :func:`increase`), summed by ``by``.

    Latency SLIs count histogram observations, ratio SLIs playback attempts,
    rebuffering the seconds watched (stall + played).

    >>> print(sli_total("rebuffering", increase, "1h", "rum"))
    (
      sum by (region) (increase(streamslo_rebuffer_seconds_total{kind="rum"}[1h]))
      +
      sum by (region) (increase(streamslo_played_seconds_total{kind="rum"}[1h]))
    )
    """
    if sli_kind(sli) == c.SLI_KIND_LATENCY:
        return _summed((c.METRIC_LATENCY_COUNT,), _latency_labels(sli, kind), fn, window, by, region_re)
    return _summed(RATIO_COUNTERS[sli][1], {c.LABEL_KIND: kind}, fn, window, by, region_re)


def sli_bad(
    slo: SLO, fn: RangeFn, window: str, kind: str, by: tuple[str, ...] = REGION_ONLY, region_re: str = ""
) -> str:
    """Bad events of ``slo`` over ``window``, summed by ``by``: count - good bucket, or the bad counter.

    >>> print(sli_bad(SLO("rebuffering", "rebuffering", 0.005), rate, "5m", "rum"))
    sum by (region) (rate(streamslo_rebuffer_seconds_total{kind="rum"}[5m]))
    """
    if slo.kind != c.SLI_KIND_LATENCY:
        return _ratio_bad(slo.sli, fn, window, kind, by, region_re)
    total = sli_total(slo.sli, fn, window, kind, by, region_re)
    good = sum_by(by, fn(good_bucket(slo, kind, region_re), window))
    return f"(\n  {total}\n  -\n  {good}\n)"


def _ratio_bad(sli: str, fn: RangeFn, window: str, kind: str, by: tuple[str, ...], region_re: str) -> str:
    """The bad counter of a ratio or time-ratio SLI (fatal errors, exits, stall seconds), summed by ``by``."""
    return _summed(RATIO_COUNTERS[sli][0], {c.LABEL_KIND: kind}, fn, window, by, region_re)


def good_bucket(slo: SLO, kind: str, region_re: str = "") -> str:
    """The histogram bucket series at the SLO's threshold, whatever the ``le`` spelling."""
    if slo.threshold_s is None:
        raise ValueError(f"SLO {slo.name!r} has no latency threshold")
    patterns = {c.LABEL_LE: le_pattern(slo.threshold_s)}
    if region_re:
        patterns[c.LABEL_REGION] = region_re
    return selector_re(c.METRIC_LATENCY_BUCKET, _latency_labels(slo.sli, kind), patterns)


def sli_error_ratio(
    slo: SLO, window: str, kind: str, by: tuple[str, ...] = REGION_ONLY, region_re: str = ""
) -> str:
    """The SLI error ratio over ``window`` per ``by`` (region by default): bad events / all events.

    For a latency SLO the bad events are ``count - bucket{le=threshold}``, exact
    because the bucket edges include every threshold. No traffic gives NaN
    (0/0), which never fires an alert.
    """
    bad = sli_bad(slo, rate, window, kind, by, region_re)
    return f"{bad}\n/\n{sli_total(slo.sli, rate, window, kind, by, region_re)}"


def sli_ratio(sli: str, window: str, kind: str, by: tuple[str, ...] = REGION_ONLY, region_re: str = "") -> str:
    """Bad / all events of a ratio or time-ratio SLI over ``window`` (triggers' ``above_ratio``, dashboards).

    >>> print(sli_ratio("exits_before_start", "1m", "rum"))
    sum by (region) (rate(streamslo_playback_exits_before_start_total{kind="rum"}[1m]))
    /
    sum by (region) (rate(streamslo_playback_attempts_total{kind="rum"}[1m]))
    """
    if sli_kind(sli) == c.SLI_KIND_LATENCY:
        raise ValueError(f"{sli!r} is a latency SLI: its ratio needs an SLO's threshold")
    bad = _ratio_bad(sli, rate, window, kind, by, region_re)
    return f"{bad}\n/\n{sli_total(sli, rate, window, kind, by, region_re)}"


def events_in_window(sli: str, window: str, kind: str) -> str:
    """Per-region number of events an SLI counted over ``window`` (low-traffic guards).

    What :func:`sli_total` counts: histogram observations, playback attempts,
    or seconds watched for rebuffering.
    """
    return sli_total(sli, increase, window, kind)


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
