"""Recording rules: SLI error ratios, event counts, and the meta/budget records.

Use :func:`sli_group` and :func:`meta_group` to get the two rule groups for a
spec; alert rules (``alerts/alerting.py``) and dashboards read these records
instead of the raw counters, so the SLI maths exists once.

Shapes (Sloth's, per region because every expression sums ``by (region)``):

- ``slo:sli_error:ratio_rate<w>{slo, sli, window}``: bad / all events over w,
  for every tier window and the period;
- ``slo:sli_events:count<w>{slo, sli, window}``: events over each tier's long
  window (the low-traffic guard);
- ``slo:objective:ratio`` / ``slo:error_budget:ratio`` {slo, sli}: constants;
- ``slo:burn_rate:ratio_rate<w>{slo, sli, window}``: error ratio / budget;
- ``slo:period_error_budget_remaining:ratio{slo, sli}``: 1 - period burn.

>>> from slo.spec import load_spec
>>> spec, _ = load_spec()
>>> sli_group(spec)["rules"][0]["record"]
'slo:sli_error:ratio_rate5m'
"""

from __future__ import annotations

from typing import Any

from alerts import promql
from slo import conventions as c
from slo.durations import format_duration
from slo.model import SLO, Spec

Rule = dict[str, Any]
Group = dict[str, Any]

__all__ = ["Group", "Rule", "long_windows", "meta_group", "sli_group", "slo_labels"]


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


def sli_group(spec: Spec) -> Group:
    """SLI error ratios for every alert window, and event counts for every long window."""
    rules: list[Rule] = []
    for slo in _sorted_slos(spec):
        for seconds in spec.alert_windows_s:
            window = format_duration(seconds)
            rules.append(
                {
                    "record": c.sli_error_record(window),
                    "expr": promql.sli_error_ratio(slo, window, spec.evaluate_kind),
                    "labels": slo_labels(slo, window),
                }
            )
        for seconds in long_windows(spec):
            window = format_duration(seconds)
            rules.append(
                {
                    "record": c.events_record(window),
                    "expr": promql.events_in_window(slo.sli, window, spec.evaluate_kind),
                    "labels": slo_labels(slo, window),
                }
            )
    return {"name": c.GROUP_SLI_RECORDINGS, "rules": rules}


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
