"""Recording rules: SLI error ratios, event counts, and the meta/budget records.

Use :func:`sli_group`, :func:`counts_group`, :func:`long_window_group` and
:func:`meta_group` to get the recording groups for a spec; alert rules
(``alerts/alerting.py``) and dashboards read these records instead of the raw
counters, so the SLI maths exists once.

Shapes (Sloth's, in the ``streamslo:`` namespace, per region because every
expression sums ``by (region)``):

- ``streamslo:sli_error:ratio_rate<w>{slo, sli, window}``: bad / all events over
  w, for every tier window and the period (>= 1d: from hourly counts,
  ``alerts/long_windows.py``);
- ``streamslo:sli_events:count<w>{slo, sli, window}``: events over each tier's
  long window (the low-traffic guard);
- ``streamslo:objective:ratio`` / ``streamslo:error_budget:ratio`` {slo, sli}: constants;
- ``streamslo:burn_rate:ratio_rate<w>{slo, sli, window}``: error ratio / budget;
- ``streamslo:period_error_budget_remaining:ratio{slo, sli}``: 1 - period burn.

>>> from slo.spec import load_spec
>>> spec, _ = load_spec()
>>> sli_group(spec)["rules"][0]["record"]
'streamslo:sli_error:ratio_rate5m'
"""

from __future__ import annotations

from typing import Any

from alerts import long_windows as long_windows_mod
from slo import conventions as c
from slo import promql
from slo.durations import format_duration
from slo.model import SLO, Spec

Rule = dict[str, Any]
Group = dict[str, Any]

__all__ = [
    "Group",
    "Rule",
    "counts_group",
    "long_window_group",
    "long_windows",
    "meta_group",
    "sli_group",
    "slo_labels",
]


def slo_labels(slo: SLO, window: str | None = None) -> dict[str, str]:
    """Labels every record of ``slo`` carries (``window`` when it is per window)."""
    labels = {c.LABEL_SLI: slo.sli, c.LABEL_SLO: slo.name}
    if window is not None:
        labels[c.LABEL_WINDOW] = window
    return labels


def long_windows(spec: Spec) -> tuple[float, ...]:
    """The tiers' long windows, sorted: where the low-traffic guard counts events."""
    return tuple(sorted({t.long_s for t in spec.tiers}))


def _sorted_slos(spec: Spec) -> list[SLO]:
    return sorted(spec.slos, key=lambda s: s.name)


def sli_group(spec: Spec, raw_long_windows: bool = False) -> Group:
    """SLI error ratios and event counts for every window shorter than a counted one.

    The long windows (>= 1d) are in :func:`long_window_group`; with
    ``raw_long_windows`` they stay here, read from raw samples (the rules as
    they were before counted windows; ``bench/bench_rules.py`` compares both).
    """
    rules: list[Rule] = []
    for slo in _sorted_slos(spec):
        rules += [
            _ratio_rule(slo, s, promql.sli_error_ratio(slo, format_duration(s), spec.evaluate_kind))
            for s in spec.alert_windows_s
            if raw_long_windows or not long_windows_mod.is_counted(s)
        ]
        rules += [
            _events_rule(slo, s, promql.events_in_window(slo.sli, format_duration(s), spec.evaluate_kind))
            for s in long_windows(spec)
            if raw_long_windows or not long_windows_mod.is_counted(s)
        ]
    return {"name": c.GROUP_SLI_RECORDINGS, "rules": rules}


def long_window_group(spec: Spec) -> Group:
    """Error ratios and event counts of the counted windows, summed from hourly counts."""
    rules: list[Rule] = []
    for slo in _sorted_slos(spec):
        rules += [
            _ratio_rule(slo, s, long_windows_mod.error_ratio(slo, s))
            for s in spec.alert_windows_s
            if long_windows_mod.is_counted(s)
        ]
        rules += [
            _events_rule(slo, s, long_windows_mod.events(slo, s))
            for s in long_windows(spec)
            if long_windows_mod.is_counted(s)
        ]
    return {"name": c.GROUP_SLI_LONG_WINDOWS, "rules": rules}


def counts_group(spec: Spec) -> Group:
    """The hourly bad and total event counts the counted windows sum."""
    labels = {slo.name: slo_labels(slo) for slo in spec.slos}
    return long_windows_mod.counts_group(spec, labels)


def _ratio_rule(slo: SLO, seconds: float, expr: str) -> Rule:
    window = format_duration(seconds)
    return {"record": c.sli_error_record(window), "expr": expr, "labels": slo_labels(slo, window)}


def _events_rule(slo: SLO, seconds: float, expr: str) -> Rule:
    window = format_duration(seconds)
    return {"record": c.events_record(window), "expr": expr, "labels": slo_labels(slo, window)}


def meta_group(spec: Spec) -> Group:
    """Objective and budget constants, burn rates per window, and budget remaining."""
    rules: list[Rule] = []
    period = format_duration(spec.period_s)
    for slo in _sorted_slos(spec):
        budget = promql.fmt_number(slo.budget)
        rules.append(
            {
                "record": c.RECORD_OBJECTIVE,
                "expr": f"vector({promql.fmt_number(slo.objective)})",
                "labels": slo_labels(slo),
            }
        )
        rules.append(
            {"record": c.RECORD_ERROR_BUDGET, "expr": f"vector({budget})", "labels": slo_labels(slo)}
        )
        for seconds in spec.alert_windows_s:
            window = format_duration(seconds)
            ratio = promql.selector(c.sli_error_record(window), **{c.LABEL_SLO: slo.name})
            rules.append(
                {
                    "record": c.burn_rate_record(window),
                    "expr": f"{ratio} / {budget}",
                    "labels": slo_labels(slo, window),
                }
            )
        period_ratio = promql.selector(c.sli_error_record(period), **{c.LABEL_SLO: slo.name})
        rules.append(
            {
                "record": c.RECORD_BUDGET_REMAINING,
                # The period record carries window=<period>; drop it so the
                # budget-remaining series is one per (slo, region).
                "expr": f"1 - (sum without ({c.LABEL_WINDOW}) ({period_ratio}) / {budget})",
                "labels": slo_labels(slo),
            }
        )
    return {"name": c.GROUP_META_RECORDINGS, "rules": rules}
