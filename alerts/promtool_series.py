"""Shared pieces of the generated promtool tests: series notation, expected alerts, group order.

Use :func:`ramp` to write a counter in promtool's expanding notation,
:func:`sli_series` for the counters of one SLO in one region (:func:`ratio_series`
for a ratio SLI without an SLO, as a trigger clause names it), and
:func:`expected` for an alert as promtool compares it (labels and rendered
annotations).

>>> ramp([(100, 2), (20, 2)])
'0+100x2 220+20x1'
"""

from __future__ import annotations

from typing import Any

from alerts import alerting
from slo import conventions as c
from slo import promql
from slo.model import SLO

__all__ = ["GROUP_ORDER", "Series", "TestGroup", "expected", "num", "ramp", "ratio_series", "series", "sli_series"]

# promtool evaluates groups in name order unless told; records must come
# first so an alert sees the records of the same evaluation, as the tier
# steps (up to hours) are far longer than the 5m lookback.
GROUP_ORDER = [
    c.GROUP_SLI_COUNTS,
    c.GROUP_SLI_RECORDINGS,
    c.GROUP_SLI_LONG_WINDOWS,
    c.GROUP_META_RECORDINGS,
    c.GROUP_BURN_ALERTS,
    c.GROUP_TRIGGER_ALERTS,
    c.GROUP_PIPELINE_ALERTS,
    c.GROUP_AUTOSCALING_RECORDINGS,
]

Series = dict[str, str]
TestGroup = dict[str, Any]



def num(value: float) -> str:
    return promql.fmt_number(round(value, 9))


def ramp(segments: list[tuple[float, int]]) -> str:
    """promtool series notation for a counter growing by ``inc`` per sample for ``n`` samples.

    ``[(100, 10), (20, 5)]``: 11 samples growing by 100 (from 0), then 5 more growing by 20.
    """
    parts, value, first = [], 0.0, True
    for inc, count in segments:
        if first:
            parts.append(f"0+{num(inc)}x{count}")
            value = inc * count
            first = False
        else:
            value += inc
            parts.append(f"{num(value)}+{num(inc)}x{count - 1}")
            value += inc * (count - 1)
    return " ".join(parts)


def series(metric: str, labels: dict[str, str], values: str) -> Series:
    return {"series": promql.selector(metric, **labels), "values": values}


def sli_series(slo: SLO, kind: str, region: str, n: float, ratio: float, before: int, after: int) -> list[Series]:
    """Counters for one region: ``n`` events per sample, all good for ``before`` samples, then ``ratio`` bad."""
    if slo.kind != c.SLI_KIND_LATENCY:
        return ratio_series(slo.sli, kind, region, n, ratio, before, after)
    assert slo.threshold_s is not None
    labels = {c.LABEL_REGION: region, c.LABEL_KIND: kind, c.LABEL_SLI: slo.sli}
    good = ramp([(n, before), (n * (1 - ratio), after)])
    return [
        series(c.METRIC_LATENCY_COUNT, labels, ramp([(n, before + after)])),
        series(c.METRIC_LATENCY_BUCKET, labels | {c.LABEL_LE: promql.le_label(slo.threshold_s)}, good),
    ]


def ratio_series(sli: str, kind: str, region: str, n: float, ratio: float, before: int, after: int) -> list[Series]:
    """The counters of a ratio or time-ratio SLI (``promql.RATIO_COUNTERS``): ``n`` per sample, then ``ratio`` bad.

    The total's other counter carries the rest: every attempt for a ratio SLI
    (attempts = n), the played seconds for rebuffering (played = n - stall).
    """
    (bad_metric,), total_metrics = promql.RATIO_COUNTERS[sli]
    (rest_metric,) = (m for m in total_metrics if m != bad_metric)
    if bad_metric in total_metrics:
        rest = ramp([(n, before), (n * (1 - ratio), after)])
    else:
        rest = ramp([(n, before + after)])
    labels = {c.LABEL_REGION: region, c.LABEL_KIND: kind}
    return [
        series(rest_metric, labels, rest),
        series(bad_metric, labels, ramp([(0, before), (n * ratio, after)])),
    ]


def expected(rule: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    all_labels = labels | rule["labels"]
    annotations = {k: alerting.render(v, all_labels) for k, v in rule["annotations"].items()}
    return {"exp_labels": dict(sorted(all_labels.items())), "exp_annotations": annotations}
