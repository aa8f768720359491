"""Detection times of the burn-rate tiers: how long until an alert fires.

Use :func:`detection_s` for one (SLO, tier) and :func:`markdown_table` for the
table in ``docs/alerting.md`` (a test keeps the doc equal to this output).

The maths is :func:`slo.budget.detection_time_s` (``factor x budget x long /
bad`` plus the tier's ``for:``); a tier whose threshold ``factor x budget``
is at or above ``bad`` never fires.

>>> from slo.spec import load_spec
>>> spec, _ = load_spec()
>>> slo = spec.slo("ttff-p99")
>>> round(detection_s(spec.resolved_tiers(slo)[0], slo) / 60, 1)
8.6
"""

from __future__ import annotations

from slo.budget import detection_time_s
from slo.durations import format_duration
from slo.model import SLO, ResolvedTier, Spec

__all__ = ["detection_s", "markdown_table"]


def detection_s(resolved: ResolvedTier, slo: SLO, bad: float = 1.0) -> float | None:
    """Seconds from the start of an incident of error ratio ``bad`` to firing, or None."""
    tier = resolved.tier
    return detection_time_s(resolved.factor, slo.budget, tier.long_s, bad, tier.for_s)


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 60:.3g} min"


def markdown_table(spec: Spec, bad: float = 1.0) -> str:
    """Detection time per SLO and tier when ``bad`` of the events turn bad.

    A cell whose alert is not of its column's severity (the SLO's
    ``max_severity`` caps it) names the severity it has: ``8.64 min (ticket)``.
    """
    heads = [
        f"{t.name} {t.factor:g}x/{format_duration(t.long_s)} ({t.severity})" for t in spec.tiers
    ]
    lines = [
        f"| SLO (budget) | max burn | {' | '.join(heads)} |",
        "|---|---|" + "---|" * len(spec.tiers),
    ]
    for slo in sorted(spec.slos, key=lambda s: s.name):
        cells = []
        for resolved in spec.resolved_tiers(slo):
            cell = _minutes(detection_s(resolved, slo, bad))
            if resolved.adapted:
                cell += f" (adapted to {resolved.factor:g}x)"
            if slo.severity_of(resolved.tier) != resolved.tier.severity:
                cell += f" ({slo.severity_of(resolved.tier)})"
            cells.append(cell)
        lines.append(f"| {slo.name} ({slo.budget:.3g}) | {slo.max_burn_rate:.3g}x | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"
