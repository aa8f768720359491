"""Budget maths: burn rate, budget remaining, detection times (docs/alerting.md), tiers, triggers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slo.budget import (
    TriggerTracker,
    budget_remaining,
    burn_rate,
    condition_holds,
    detection_time_s,
    evaluate_tier,
    latency_bad,
)
from slo.model import Condition, ResolvedTier, Spec, Tier, Trigger, resolve_tier
from slo.rolling import ATTEMPTS, ERRORS, FIRST_EDGE, Window, pane_width
from slo.spec import load_spec


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec()[0]


@pytest.mark.parametrize(
    ("bad", "total", "budget", "burn", "remaining"),
    [
        (0, 0, 0.01, 0.0, 1.0),
        (0, 1000, 0.01, 0.0, 1.0),
        (10, 1000, 0.01, 1.0, 0.0),
        (5, 1000, 0.01, 0.5, 0.5),
        (30, 1000, 0.01, 3.0, -2.0),
        (1000, 1000, 0.05, 20.0, -19.0),
        (50, 1000, 0.1, 0.5, 0.5),
    ],
    ids=[
        "no traffic burns nothing and leaves the whole budget",
        "all good events burn nothing",
        "an error ratio equal to the budget burns at 1x and spends it all",
        "half the budget's ratio burns at 0.5x and leaves half",
        "three times the budget's ratio overspends: remaining goes negative",
        "every event bad on a 5 % budget burns at the 20x maximum",
        "a 10 % budget with 5 % bad burns at 0.5x",
    ],
)
def test_burn_rate_and_budget_remaining(
    bad: int, total: int, budget: float, burn: float, remaining: float
) -> None:
    assert math.isclose(burn_rate(bad, total, budget), burn, abs_tol=1e-12)
    assert math.isclose(budget_remaining(bad, total, budget), remaining, abs_tol=1e-12)


def test_a_zero_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="budget"):
        burn_rate(1, 10, 0.0)


# docs/alerting.md: minutes to fire when 100 % of events turn bad (None: never fires).
DETECTION_TABLE: dict[str, dict[str, float | None]] = {
    "ttff-p90": {"fast": None, "medium": 216.0, "slow": 432.0, "slowest": 432.0},
    "ttff-p95": {"fast": 43.2, "medium": 108.0, "slow": 216.0, "slowest": 216.0},
    "ttff-p99": {"fast": 8.64, "medium": 21.6, "slow": 43.2, "slowest": 43.2},
    "errors": {"fast": 8.64, "medium": 21.6, "slow": 43.2, "slowest": 43.2},
}
CELLS = [(slo, tier, minutes) for slo, row in DETECTION_TABLE.items() for tier, minutes in row.items()]


@pytest.mark.parametrize(
    ("slo_name", "tier_name", "minutes"),
    CELLS,
    ids=[
        f"{slo} {tier} tier {'never fires' if m is None else f'fires after {m:g} min'} when all events turn bad"
        for slo, tier, m in CELLS
    ],
)
def test_design_detection_time_table(spec: Spec, slo_name: str, tier_name: str, minutes: float | None) -> None:
    slo = spec.slo(slo_name)
    tier = next(t for t in spec.tiers if t.name == tier_name)
    got = detection_time_s(tier.factor, slo.budget, tier.long_s)
    if minutes is None:
        assert got is None
    else:
        assert got is not None and math.isclose(got / 60, minutes, rel_tol=1e-9)


def test_the_adapted_fast_tier_of_a_p90_objective_fires(spec: Spec) -> None:
    slo = spec.slo("ttff-p90")
    resolved = spec.resolved_tiers(slo)[0]
    assert resolved.adapted and math.isclose(resolved.factor, 9.0)
    got = detection_time_s(resolved.factor, slo.budget, resolved.tier.long_s)
    assert got is not None and math.isclose(got / 60, 54.0)


@pytest.mark.parametrize(
    ("factor", "budget", "bad_ratio", "for_s", "expected_s"),
    [
        pytest.param(14.4, 0.01, 1.0, 0.0, 518.4, id="a total outage crosses 14.4x a 1 % budget after 14.4 % of the hour"),
        pytest.param(14.4, 0.01, 1.0, 120.0, 638.4, id="the tier's for: comes on top of the crossing"),
        pytest.param(3.0, 0.01, 0.06, 0.0, 1800.0, id="half-way to saturation at twice the threshold ratio"),
        pytest.param(1.0, 0.1, 0.1 + 1e-9, 0.0, 3600.0 * 0.1 / (0.1 + 1e-9), id="just above the threshold fires just before the window is full"),
        pytest.param(1.0, 0.1, 0.1, 60.0, 3660.0, id="exactly at the threshold fires when the window is full, as the rule's >= does"),
        pytest.param(1.0, 0.1, 0.1 - 1e-9, 0.0, None, id="just below the threshold never fires"),
        pytest.param(14.4, 0.1, 1.0, 0.0, None, id="a factor above 1 / budget never fires, even on a total outage"),
    ],
)
def test_detection_time_at_and_around_the_never_fires_edge(
    factor: float, budget: float, bad_ratio: float, for_s: float, expected_s: float | None
) -> None:
    got = detection_time_s(factor, budget, 3600.0, bad_ratio, for_s)
    if expected_s is None:
        assert got is None
    else:
        assert got is not None and math.isclose(got, expected_s, rel_tol=1e-9)


def _simulate_detection(tier: Tier, budget: float, resolved: ResolvedTier, step_s: float) -> float | None:
    """Feed steady errors-SLI traffic through real windows; all good before 0, all bad after."""
    long = Window(tier.long_s, pane_width(tier.long_s, 2.0), FIRST_EDGE, with_sketch=False)
    short = Window(tier.short_s, pane_width(tier.short_s, 2.0), FIRST_EDGE, with_sketch=False)
    fields = np.zeros(FIRST_EDGE, dtype=np.int64)
    t = -tier.long_s
    while t < tier.long_s:
        fields[ATTEMPTS] = 100
        fields[ERRORS] = 100 if t >= 0 else 0
        for window in (long, short):
            window.add(t, fields, 0.0, 0.0, 0.0, None)
        state = evaluate_tier(
            resolved, budget, (long.errors, long.attempts), (short.errors, short.attempts), 100
        )
        if state.firing:
            return t + step_s  # the step's events are all in by the end of the step
        t += step_s
    return None


SIMULATED = [("ttff-p99", "fast"), ("ttff-p95", "fast"), ("errors", "medium"), ("ttff-p95", "slowest"), ("ttff-p90", "fast")]


@pytest.mark.parametrize(
    ("slo_name", "tier_name"),
    SIMULATED,
    ids=[
        "p99 fast tier fires about 8.6 min into a total outage, through real windows",
        "p95 fast tier fires about 43 min in",
        "errors medium tier fires about 21.6 min in",
        "p95 slowest tier (3 d window) fires about 216 min in",
        "p90 fast tier, adapted to 9x, fires about 54 min in",
    ],
)
def test_detection_time_through_rolling_windows_matches_the_formula(
    spec: Spec, slo_name: str, tier_name: str
) -> None:
    slo = spec.slo(slo_name)
    resolved = next(r for r in spec.resolved_tiers(slo) if r.name == tier_name)
    step = 60.0
    got = _simulate_detection(resolved.tier, slo.budget, resolved, step)
    expected = detection_time_s(resolved.factor, slo.budget, resolved.tier.long_s)
    assert got is not None and expected is not None
    # edges are exact to one pane of the long window, plus one feeding step
    assert abs(got - expected) <= pane_width(resolved.tier.long_s, 2.0) + step


TIER = Tier(name="fast", long_s=3600, short_s=300, factor=14.4, severity="page")
RESOLVED = ResolvedTier(tier=TIER, factor=14.4, adapted=False)


@pytest.mark.parametrize(
    ("long", "short", "min_events", "firing"),
    [
        ((150, 1000), (20, 100), 100, True),
        ((144, 1000), (15, 100), 100, True),
        ((150, 1000), (10, 100), 100, False),
        ((100, 1000), (50, 100), 100, False),
        ((15, 99), (15, 99), 100, False),
        ((15, 100), (15, 100), 100, True),
        ((0, 0), (0, 0), 0, False),
    ],
    ids=[
        "both windows above 14.4x fire",
        "exactly 14.4x in the long window fires (>=)",
        "a long burn alone does not fire (the short window has recovered)",
        "a short spike alone does not fire",
        "the low-traffic guard holds below 100 events in the long window",
        "the guard opens at exactly 100 events",
        "no traffic never fires, even without a guard",
    ],
)
def test_multiwindow_tier_with_low_traffic_guard(
    long: tuple[int, int], short: tuple[int, int], min_events: int, firing: bool
) -> None:
    state = evaluate_tier(RESOLVED, 0.01, long, short, min_events)
    assert state.firing is firing
    assert state.long_events == long[1]


def test_an_adapted_tier_fires_at_its_capped_factor() -> None:
    slow_p90 = resolve_tier(TIER, spec_slo := load_spec()[0].slo("ttff-p90"))
    assert slow_p90.adapted
    assert evaluate_tier(slow_p90, spec_slo.budget, (950, 1000), (95, 100), 100).firing
    assert not evaluate_tier(slow_p90, spec_slo.budget, (850, 1000), (95, 100), 100).firing


SCALE_OUT = Trigger(name="scale_out", action="", for_s=120.0, window_s=60.0, conditions=())


@pytest.mark.parametrize(
    ("steps", "expected_active"),
    [
        ([(0, True), (60, True), (119, True), (120, True)], [False, False, False, True]),
        ([(0, True), (100, False), (110, True), (229, True), (230, True)], [False, False, False, False, True]),
        ([(0, True), (200, True), (201, False), (202, True)], [False, True, False, False]),
        ([(0, False), (500, False)], [False, False]),
    ],
    ids=[
        "a condition held for 2 min activates the trigger exactly at 120 s",
        "a gap resets the clock: 120 s counted from the condition's return",
        "an active trigger clears as soon as the condition stops",
        "a condition that never holds never activates",
    ],
)
def test_trigger_for_state_machine(steps: list[tuple[float, bool]], expected_active: list[bool]) -> None:
    tracker = TriggerTracker((SCALE_OUT,))
    got = [tracker.update("scale_out", cond, float(t)).active for t, cond in steps]
    assert got == expected_active
    last_t, last_cond = steps[-1]
    assert tracker.state("scale_out", float(last_t)).condition is last_cond


@pytest.mark.parametrize(
    ("condition", "quantile_s", "bad", "total", "min_events", "holds"),
    [
        (Condition(sli="ttff", quantile=0.95, above_s=0.2), 0.25, 0, 50, 20, True),
        (Condition(sli="ttff", quantile=0.95, above_s=0.2), 0.2, 0, 50, 20, False),
        (Condition(sli="ttff", quantile=0.95, above_s=0.2), 0.25, 0, 19, 20, False),
        (Condition(sli="ttff", quantile=0.95, above_s=0.2), None, 0, 50, 0, False),
        (Condition(sli="errors", above_ratio=0.01), None, 2, 100, 20, True),
        (Condition(sli="errors", above_ratio=0.01), None, 1, 100, 20, False),
        (Condition(sli="errors", above_ratio=0.01), None, 5, 10, 20, False),
    ],
    ids=[
        "p95 above 200 ms holds",
        "p95 exactly at 200 ms does not (strictly above)",
        "too few events in the window: the min-events guard holds it back",
        "an empty window holds nothing",
        "an error ratio of 2 % is above 1 %",
        "exactly 1 % is not above 1 %",
        "50 % errors out of 10 attempts is below the min-events guard",
    ],
)
def test_trigger_conditions(
    condition: Condition, quantile_s: float | None, bad: int, total: int, min_events: int, holds: bool
) -> None:
    assert condition_holds(condition, quantile_s, bad, total, min_events) is holds


def test_latency_bad_counts_are_exact_at_a_threshold_edge(spec: Spec) -> None:
    edges = spec.histogram_buckets_s
    values = np.array([0.05, 0.15, 0.2, 0.2000001, 0.3, 1.0])
    le = tuple(int(x) for x in np.searchsorted(values, edges, side="right"))
    assert latency_bad(values.size, le, edges, 0.2) == 3
    assert latency_bad(values.size, le, edges, 0.15) == 4
    with pytest.raises(ValueError, match="not a histogram bucket edge"):
        latency_bad(values.size, le, edges, 0.123)
