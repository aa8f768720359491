"""Error-budget maths: burn rates, budget remaining, multiwindow tiers, operational triggers.

Pure functions over counts (bad events, total events) and the spec model; the
only state is :class:`TriggerTracker`, which remembers since when each trigger's
condition has held. Stage 2 (``slo/stage2.py``) feeds these from its rolling
windows; the alert generator encodes the same maths in PromQL.

Bad and total events per SLI kind (:func:`slo_counts`): a latency SLO's bad
events are those above its threshold, of all its events; ``errors`` are fatal
errors of playback attempts, ``exits_before_start`` exits of attempts, and
``rebuffering`` is time-weighted: stall microseconds of stall + played
microseconds. Business errors are in neither.

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
from slo import health
from slo.model import SLO, Condition, ResolvedTier, Trigger, sli_kind
from slo.windows import Counts

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
    "ratio_counts",
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


def detection_time_s(
    factor: float, budget: float, long_s: float, bad_ratio: float = 1.0, for_s: float = 0.0
) -> float | None:
    """Seconds until a tier fires after the error ratio jumps to ``bad_ratio``; None: never.

    SRE Workbook: with steady traffic that was all good before, the long-window
    error ratio grows as ``bad_ratio * t / long_s`` and crosses the tier's
    threshold ``factor * budget`` after ``factor * budget * long_s / bad_ratio``;
    the short window crosses sooner; the rule's ``for:`` (``for_s``) comes on top.

    None when ``factor * budget > bad_ratio``. At equality the long window
    reaches the threshold exactly when it is full of bad events (``long_s``):
    the alert rule's ``burn >= factor`` and :func:`evaluate_tier` (with its
    float slack) fire there, so this returns ``long_s + for_s``, not None.
    """
    threshold = factor * budget
    if threshold > bad_ratio:
        return None
    return threshold * long_s / bad_ratio + for_s


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
    *,
    severity: str | None = None,
) -> TierState:
    """Evaluate one tier: fires when both burns reach the factor and the long window has traffic.

    ``long`` and ``short`` are ``(bad, total)`` over the tier's windows;
    ``min_events`` is the low-traffic guard (``Spec.low_traffic_min_events``);
    ``severity`` is the alert's (``SLO.severity_of``: capped by the SLO's
    ``max_severity``), the tier's own when None.
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
        severity=resolved.tier.severity if severity is None else severity,
        factor=resolved.factor,
        adapted=resolved.adapted,
        long_burn=long_burn,
        short_burn=short_burn,
        long_events=long[1],
        firing=firing,
    )


def ratio_counts(sli: str, counts: Counts) -> tuple[int, int]:
    """``(bad, total)`` of a ratio or time_ratio SLI from one window's counters.

    >>> ratio_counts("rebuffering", Counts(stall_us=5_000, played_us=995_000))
    (5000, 1000000)
    """
    if sli == c.SLI_ERRORS:
        return counts.errors, counts.attempts
    if sli == c.SLI_EXITS_BEFORE_START:
        return counts.exits, counts.attempts
    if sli == c.SLI_REBUFFERING:
        return counts.stall_us, counts.stall_us + counts.played_us
    raise ValueError(f"{sli!r} is not a ratio or time_ratio SLI")


def slo_counts(slo: SLO, counts: Counts, edges: tuple[float, ...]) -> tuple[int, int]:
    """``(bad, total)`` for ``slo`` from one window's counters (``edges``: the histogram's)."""
    if sli_kind(slo.sli) != c.SLI_KIND_LATENCY:
        return ratio_counts(slo.sli, counts)
    if slo.threshold_s is None:
        raise ValueError(f"latency SLO {slo.name!r} has no threshold")
    return latency_bad(counts.count, counts.le_counts, edges, slo.threshold_s), counts.count


def condition_holds(
    condition: Condition,
    quantile_s: float | None,
    bad: int,
    total: int,
    min_events: int,
) -> bool:
    """Whether one trigger clause holds over its window.

    Latency clauses compare the window's ``condition.quantile`` (``quantile_s``)
    with ``above_s``; a ratio or time_ratio clause compares ``bad / total``
    (:func:`ratio_counts`) with ``above_ratio``. Either needs ``total >= min_events`` (and some traffic).
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
    """A trigger at one instant, as stage 2 and the status page see it.

    ``condition``: holds right now; ``active``: breached (held ``for_s``, and
    not yet clear for ``recover_for_s``; see ``slo/health.py``); ``since``:
    when the condition started holding; ``no_data``: no usable data now.
    """

    trigger: str
    condition: bool
    active: bool
    since: float | None
    breach_since: float | None = None
    clear_since: float | None = None
    no_data: bool = False


class TriggerTracker:
    """The health memory of every trigger in one region: one ``slo.health.Memory`` each.

    A thin holder: the transitions are :func:`slo.health.observe` and
    :func:`slo.health.at`, so stage 2, the status page and the health
    endpoint share one state machine. ``update`` takes ``None`` for "no usable
    data" (the trigger's ``on_no_data`` decides).

    Example::

        tracker = TriggerTracker(spec.triggers)
        tracker.update("scale_out", True, now=100.0).active   # False (for 2m)
        tracker.update("scale_out", True, now=220.0).active   # True
        tracker.update("scale_out", False, now=221.0).active  # True until recover_for has passed
    """

    def __init__(self, triggers: tuple[Trigger, ...]) -> None:
        self._triggers = {t.name: t for t in triggers}
        self.memory: dict[str, health.Memory] = {}
        self.figures: dict[str, tuple[health.ConditionFigure, ...]] = {}

    def update(
        self,
        name: str,
        condition: bool | None,
        now: float,
        figures: tuple[health.ConditionFigure, ...] = (),
    ) -> TriggerState:
        """Record the condition of trigger ``name`` at ``now`` and return its state."""
        memory = self.memory.get(name, health.Memory())
        # A clock that went back: count from now rather than from "the future".
        if memory.held_since is not None and memory.held_since > now:
            memory = health.Memory()
        self.memory[name] = health.observe(self._triggers[name], memory, condition, now)
        self.figures[name] = figures
        return _state(name, self.memory[name])

    def state(self, name: str, now: float) -> TriggerState:
        """The state of ``name`` seen at ``now`` (no new observation)."""
        memory = self.memory.get(name, health.Memory())
        if memory.observed_at is not None:
            # Staleness is judged by stage 2 when it observes; here only time elapses.
            memory = health.at(self._triggers[name], memory, now, last_data_at=now)
        return _state(name, memory)


def _state(name: str, m: health.Memory) -> TriggerState:
    return TriggerState(
        trigger=name,
        condition=m.condition,
        active=m.breached,
        since=m.held_since,
        breach_since=m.breach_since,
        clear_since=m.clear_since,
        no_data=m.no_data_since is not None,
    )
