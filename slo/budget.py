"""Error-budget maths: burn rates, budget remaining, multiwindow tiers, operational triggers.

Pure functions over counts (bad events, total events) and the spec model; the
only state is :class:`TriggerTracker`, which remembers since when each trigger's
condition has held. Stage 2 (``slo/stage2.py``) feeds these from its rolling
windows; the alert generator encodes the same maths in PromQL.

Vocabulary: the *error ratio* is ``bad / total``; the *burn rate* is the error
ratio divided by the budget (1.0 spends the budget exactly over the period);
*budget remaining* is ``1 - bad / (budget * total)`` over the period and goes
negative once the budget is overspent.

Example::

    burn_rate(bad=30, total=1000, budget=0.01)          # 3.0
    budget_remaining(bad=5, total=1000, budget=0.01)    # 0.5
    detection_time_s(factor=14.4, budget=0.01, long_s=3600)  # 518.4 (8.6 min)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from slo import conventions as c
from slo.model import SLO, Condition, ResolvedTier, Trigger

__all__ = [
    "TierState",
    "TriggerState",
    "TriggerTracker",
    "budget_remaining",
    "burn_rate",
    "condition_holds",
    "detection_time_s",
    "error_ratio",
    "evaluate_tier",
    "latency_bad",
    "slo_counts",
]

# Relative slack when comparing a computed burn rate with its factor.
_FLOAT_SLACK = 1e-9


def error_ratio(bad: int, total: int) -> float:
    """``bad / total``; 0.0 without traffic (no events, nothing bad)."""
    return bad / total if total > 0 else 0.0


def burn_rate(bad: int, total: int, budget: float) -> float:
    """How fast the budget burns: error ratio / budget; 0.0 without traffic."""
    if budget <= 0:
        raise ValueError(f"budget must be > 0, got {budget!r}")
    return error_ratio(bad, total) / budget


def budget_remaining(bad: int, total: int, budget: float) -> float:
    """Fraction of the period's budget left: ``1 - bad / (budget * total)``; negative when overspent."""
    if budget <= 0:
        raise ValueError(f"budget must be > 0, got {budget!r}")
    if total <= 0:
        return 1.0
    return 1.0 - bad / (budget * total)


def latency_bad(count: int, le_counts: tuple[int, ...], edges: tuple[float, ...], threshold_s: float) -> int:
    """Events slower than ``threshold_s``: ``count - le_counts[edge == threshold]`` (exact).

    ``threshold_s`` must be one of the histogram ``edges`` (the spec puts every
    threshold there), otherwise ValueError: an interpolated count would not be exact.
    """
    for edge, good in zip(edges, le_counts, strict=True):
        if math.isclose(edge, threshold_s, rel_tol=1e-12, abs_tol=0.0):
            return count - good
    raise ValueError(f"threshold {threshold_s!r} is not a histogram bucket edge")


def detection_time_s(factor: float, budget: float, long_s: float, bad_ratio: float = 1.0) -> float | None:
    """Seconds until a tier's long window reaches ``factor`` after the error ratio jumps to ``bad_ratio``.

    Assumes steady traffic that was all good before: the long-window error
    ratio grows as ``bad_ratio * t / long_s``. None when it never gets there
    (``factor * budget >= bad_ratio``). The short window fires far earlier.
    """
    needed = factor * budget
    if needed >= bad_ratio:
        return None
    return needed / bad_ratio * long_s


@dataclass(frozen=True)
class TierState:
    """One multiwindow tier evaluated for one SLO in one region.

    ``firing`` is the condition at this instant; a tier's ``for_s`` is left to
    the Prometheus alert rule (``for:``), as are the page/ticket routes.
    """

    tier: str
    severity: str
    factor: float
    adapted: bool
    long_burn: float
    short_burn: float
    long_events: int
    firing: bool


def evaluate_tier(
    resolved: ResolvedTier,
    budget: float,
    long: tuple[int, int],
    short: tuple[int, int],
    min_events: int,
) -> TierState:
    """Evaluate one tier: fires when both burns reach the factor and the long window has traffic.

    ``long`` and ``short`` are ``(bad, total)`` over the tier's windows;
    ``min_events`` is the low-traffic guard (``Spec.low_traffic_min_events``).
    """
    long_burn = burn_rate(long[0], long[1], budget)
    short_burn = burn_rate(short[0], short[1], budget)
    # "at the factor" must fire although 144 / 1000 / 0.01 == 14.399999999999999
    threshold = resolved.factor * (1.0 - _FLOAT_SLACK)
    firing = (
        long[1] >= min_events
        and long[1] > 0
        and long_burn >= threshold
        and short_burn >= threshold
    )
    return TierState(
        tier=resolved.name,
        severity=resolved.tier.severity,
        factor=resolved.factor,
        adapted=resolved.adapted,
        long_burn=long_burn,
        short_burn=short_burn,
        long_events=long[1],
        firing=firing,
    )


def slo_counts(
    slo: SLO,
    count: int,
    le_counts: tuple[int, ...],
    edges: tuple[float, ...],
    attempts: int,
    errors: int,
) -> tuple[int, int]:
    """``(bad, total)`` for ``slo`` from one window's counters."""
    if slo.sli == c.SLI_ERRORS:
        return errors, attempts
    if slo.threshold_s is None:
        raise ValueError(f"latency SLO {slo.name!r} has no threshold")
    return latency_bad(count, le_counts, edges, slo.threshold_s), count


def condition_holds(
    condition: Condition,
    quantile_s: float | None,
    bad: int,
    total: int,
    min_events: int,
) -> bool:
    """Whether one trigger clause holds over its window.

    Latency clauses compare the window's ``condition.quantile`` (``quantile_s``)
    with ``above_s``; the errors clause compares ``bad / total`` with
    ``above_ratio``. Either needs ``total >= min_events`` (and some traffic).
    """
    if total <= 0 or total < min_events:
        return False
    if condition.above_ratio is not None:
        return error_ratio(bad, total) > condition.above_ratio
    if condition.above_s is None or quantile_s is None:
        return False
    return quantile_s > condition.above_s


@dataclass(frozen=True)
class TriggerState:
    """A trigger at one instant: its condition now, and whether it held for ``for_s``."""

    trigger: str
    condition: bool
    active: bool
    since: float | None


class TriggerTracker:
    """Since-when each trigger's condition has held, per region; ``active`` after ``for_s``.

    Example::

        tracker = TriggerTracker(spec.triggers)
        tracker.update("scale_out", True, now=100.0).active   # False (for 2m)
        tracker.update("scale_out", True, now=220.0).active   # True
        tracker.update("scale_out", False, now=221.0).active  # False: resets
    """

    def __init__(self, triggers: tuple[Trigger, ...]) -> None:
        self._for_s = {t.name: t.for_s for t in triggers}
        self.since: dict[str, float] = {}

    def update(self, name: str, condition: bool, now: float) -> TriggerState:
        """Record the condition of trigger ``name`` at ``now`` and return its state."""
        if not condition:
            self.since.pop(name, None)
            return TriggerState(trigger=name, condition=False, active=False, since=None)
        since = self.since.setdefault(name, now)
        # A condition first seen "in the future" (clock went back) counts from now.
        if since > now:
            since = self.since[name] = now
        active = now - since >= self._for_s[name]
        return TriggerState(trigger=name, condition=True, active=active, since=since)

    def state(self, name: str, now: float) -> TriggerState:
        """The last recorded state of ``name`` seen at ``now`` (no update)."""
        since = self.since.get(name)
        if since is None:
            return TriggerState(trigger=name, condition=False, active=False, since=None)
        return TriggerState(
            trigger=name, condition=True, active=now - since >= self._for_s[name], since=since
        )
