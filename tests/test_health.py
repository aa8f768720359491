"""The region health state machine (slo/health.py): table tests, one sentence per case."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from slo.health import (
    BODY_BREACH,
    BODY_OK,
    MAX_BODY_BYTES,
    HealthReport,
    Memory,
    at,
    health_triggers,
    observe,
    region_health,
    render,
)
from slo.model import Condition, Spec, Target, Trigger
from slo.spec import load_spec
from slo.stage2 import Stage2
from tests.test_stage2 import EU, T0, latency

P95 = Condition(sli="ttff", quantile=0.95, above_s=0.2)


def good_trigger(**changes: object) -> Trigger:
    """for 2m, recover_for 1m, on_no_data healthy, stale after 30 s; each case changes one field."""
    base = Trigger(
        name="failover", action="fail over", for_s=120.0, window_s=60.0, conditions=(P95,),
        min_events=20, recover_for_s=60.0, stale_after_s=30.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def run(trigger: Trigger, steps: list[tuple[float, bool | None]]) -> list[bool]:
    """Observe each ``(t, holds)`` in turn; the breached flag after each."""
    m, out = Memory(), []
    for t, holds in steps:
        m = observe(trigger, m, holds, t)
        out.append(m.breached)
    return out


def every_second(start: int, stop: int, holds: bool | None) -> list[tuple[float, bool | None]]:
    return [(float(t), holds) for t in range(start, stop)]


TRANSITIONS = [
    pytest.param(
        good_trigger(), every_second(0, 121, True), {119: False, 120: True},
        id="a region turns unhealthy exactly after for, not a second earlier",
    ),
    pytest.param(
        good_trigger(), every_second(0, 60, True) + every_second(60, 61, False) + every_second(61, 182, True),
        {180: False, 181: True},
        id="one clear observation restarts the for count",
    ),
    pytest.param(
        good_trigger(), every_second(0, 121, True) + every_second(121, 182, False),
        {121: True, 180: True, 181: False},
        id="a breached region recovers only after recover_for of clear condition",
    ),
    pytest.param(
        good_trigger(),
        every_second(0, 121, True) + every_second(121, 150, False) + every_second(150, 151, True)
        + every_second(151, 212, False),
        {180: True, 210: True, 211: False},
        id="a condition that comes back during recover_for restarts the recovery",
    ),
    pytest.param(
        good_trigger(recover_for_s=0.0), every_second(0, 121, True) + every_second(121, 122, False),
        {120: True, 121: False},
        id="without recover_for a region recovers on the first clear observation",
    ),
    pytest.param(
        good_trigger(for_s=0.0), every_second(0, 1, True), {0: True},
        id="without for a region breaches on the first observation that holds",
    ),
    pytest.param(
        good_trigger(), every_second(0, 300, False), {299: False},
        id="a condition that never holds never breaches",
    ),
]


@pytest.mark.parametrize(("trigger", "steps", "expected"), TRANSITIONS)
def test_transitions(trigger: Trigger, steps: list[tuple[float, bool | None]], expected: dict[int, bool]) -> None:
    got = run(trigger, steps)
    assert {t: got[t] for t in expected} == expected


def test_breach_since_is_the_instant_for_elapsed() -> None:
    m = Memory()
    for t in range(0, 200, 7):  # observations need not fall on the instant itself
        m = observe(good_trigger(), m, True, float(t))
    assert m.breached and m.breach_since == 120.0


BREACHED_THEN_NO_DATA = every_second(0, 121, True) + every_second(121, 130, None)
CLEAR_THEN_NO_DATA = every_second(0, 10, False) + every_second(10, 20, None)

NO_DATA = [
    pytest.param("healthy", BREACHED_THEN_NO_DATA, False, id="on_no_data healthy: a breached region without data is ok"),
    pytest.param("unhealthy", CLEAR_THEN_NO_DATA, True, id="on_no_data unhealthy: a healthy region without data is a breach"),
    pytest.param("last_known", BREACHED_THEN_NO_DATA, True, id="on_no_data last_known: a breached region stays breached"),
    pytest.param("last_known", CLEAR_THEN_NO_DATA, False, id="on_no_data last_known: a healthy region stays healthy"),
]


@pytest.mark.parametrize(("policy", "steps", "breached"), NO_DATA)
def test_no_data_policies(policy: str, steps: list[tuple[float, bool | None]], breached: bool) -> None:
    assert run(good_trigger(on_no_data=policy), steps)[-1] is breached


def test_counts_restart_when_data_comes_back() -> None:
    steps = every_second(0, 100, True) + every_second(100, 110, None) + every_second(110, 231, True)
    got = run(good_trigger(on_no_data="last_known"), steps)
    assert got[229] is False and got[230] is True  # 120 s from t=110, not from t=0


def test_recovery_after_unhealthy_no_data_still_needs_recover_for() -> None:
    steps = every_second(0, 10, None) + every_second(10, 71, False)
    got = run(good_trigger(on_no_data="unhealthy"), steps)
    assert got[69] is True and got[70] is False


STALE = [
    pytest.param("healthy", 29.0, True, id="input 29 s old with stale_after 30 s is still fresh: breached"),
    pytest.param("healthy", 31.0, False, id="input 31 s old is stale: on_no_data healthy answers ok"),
    pytest.param("unhealthy", 31.0, True, id="input 31 s old is stale: on_no_data unhealthy answers breach"),
    pytest.param("last_known", 3600.0, True, id="stale for an hour with last_known keeps the breach"),
]


@pytest.mark.parametrize(("policy", "age", "breached"), STALE)
def test_stale_input_is_no_data(policy: str, age: float, breached: bool) -> None:
    trigger = good_trigger(on_no_data=policy)
    m = Memory()
    for t in range(0, 150):
        m = observe(trigger, m, True, float(t))
    seen = at(trigger, m, now=150.0 + age, last_data_at=150.0)
    assert seen.breached is breached
    assert (seen.no_data_since is not None) is (age > trigger.stale_after_s)


def test_at_lets_for_elapse_without_a_new_observation() -> None:
    m = observe(good_trigger(), Memory(), True, 0.0)
    assert not at(good_trigger(), m, 119.0, last_data_at=119.0).breached
    assert at(good_trigger(), m, 120.0, last_data_at=119.0).breached


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec()[0]


def test_an_unknown_region_has_no_health(spec: Spec) -> None:
    assert region_health(spec, "mars-north-1", None, now=T0) is None


def test_a_region_that_never_reported_answers_its_no_data_policies(spec: Spec) -> None:
    health = region_health(spec, EU, None, now=T0)
    assert health is not None and health.healthy
    assert all(t.no_data for t in health.triggers)


def test_only_triggers_with_a_route53_target_decide_the_health(spec: Spec) -> None:
    assert health_triggers(spec) == ("failover",)
    no_targets = replace(spec, triggers=tuple(replace(t, targets=()) for t in spec.triggers))
    assert health_triggers(no_targets) == ("scale_out", "failover")
    scale_only = replace(spec.triggers[0], targets=(Target(kind="route53", fqdn="x.example.com"),))
    failover_alone = replace(spec.triggers[1], targets=())
    assert health_triggers(replace(spec, triggers=(scale_only, failover_alone))) == ("scale_out",)


def _breached_stage2(spec: Spec, seconds: int) -> tuple[Stage2, float]:
    """EU at 400 ms for ``seconds``: 30 events per pane, a partial per pane."""
    stage2 = Stage2(spec)
    now = T0
    for step in range(seconds // int(spec.pane_s)):
        pane = step * spec.pane_s
        p = latency(spec, pane, hi=step + 1, lo=step, values=np.full(30, 0.4))
        stage2.apply(p)
        now = T0 + pane + 1.0
        stage2.advance(now)
    return stage2, now


RENDER = [
    pytest.param(200, 200, BODY_OK, id="p95 above the failover limit for 200 s is not yet a breach (for 5m)"),
    pytest.param(320, 503, BODY_BREACH, id="p99 above 300 ms for 5 minutes answers 503 SLO_BREACH"),
]


@pytest.mark.parametrize(("seconds", "status", "marker"), RENDER)
def test_stage2_report_renders_the_endpoint_answer(spec: Spec, seconds: int, status: int, marker: str) -> None:
    stage2, now = _breached_stage2(spec, seconds)
    report = stage2.health_report(EU)
    assert report is not None
    health = region_health(spec, EU, HealthReport.from_json(report.to_json()), now)
    assert health is not None
    code, body = render(health)
    assert code == status and body.startswith(marker + "\n")
    assert len(body[: body.index("\n")].encode()) < MAX_BODY_BYTES
    doc = json.loads(body.split("\n", 1)[1])
    failover = next(t for t in doc["triggers"] if t["trigger"] == "failover")
    assert failover["drives_health"] and failover["condition"]
    assert failover["held_since"] == T0 + 1.0
    p99 = next(f for f in failover["figures"] if f["sli"] == "ttff" and f["quantile"] == 0.99)
    assert p99["value"] == pytest.approx(0.4, rel=0.02) and p99["limit"] == 0.3 and p99["holds"]


def test_the_report_survives_the_stage2_table_round_trip(spec: Spec) -> None:
    stage2, _ = _breached_stage2(spec, 320)
    restored = Stage2(spec)
    restored.import_region(EU, stage2.export_region(EU))
    before, after = stage2.health_report(EU), restored.health_report(EU)
    assert before is not None and after is not None
    assert after.memories == before.memories and after.last_data_at == before.last_data_at
