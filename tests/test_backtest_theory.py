"""Backtest detection times on the SRE Workbook's theory table, tier by tier.

A step incident (from 5 minutes on, a fraction ``bad`` of one region's
events turns bad) is simulated, replayed through the real engine by the
backtest, and each tier's first firing is compared with
``alerts.detection.detection_s``: ``factor x budget x long window / bad``
plus the tier's ``for:`` (the table in ``docs/alerting.md``). They must agree
within one evaluation interval. The calm region never fires.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

from alerts.detection import detection_s
from slo.spec import load_spec
from streamslo.backtest.run import Outcome, backtest
from streamslo.backtest.scenario import parse_scenario
from streamslo.backtest.simulate import write

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec(ROOT / "tests" / "specs" / "short.yaml")[0]
EVAL_S = 1.0
ON_S = 300.0  # the long windows (4 min at most) are full of good traffic by then
INCIDENT, CALM = "eu-west-1", "us-east-1"


def _scenario(effect: dict[str, Any]) -> dict[str, Any]:
    """Steady traffic, one event per beacon delivered 50 ms after it: the theory's assumptions."""
    return {
        "hours": 0.2, "regions": [CALM, INCIDENT], "attempts_per_s": 200, "interactions_per_attempt": 0,
        "error_ratio": 0.0, "events_per_beacon": 1, "delivery_s": 0.05, "delivery_jitter_s": 0,
        "effects": [{"name": "step", "region": INCIDENT, "start": ON_S, "end": 600, **effect}],
    }


STEPS: dict[str, dict[str, Any]] = {
    "errors 100%": {"error_ratio": 1.0},
    "errors 50%": {"error_ratio": 0.5},
    "errors 20%": {"error_ratio": 0.2},
    # Every first frame 10x slower: p99 of the healthy 90 ms median is 181 ms, now all above 300 ms.
    "all slow": {"latency_factor": 10.0},
}


@cache
def outcome(step: str, tmp: Path) -> Outcome:
    path = tmp / f"{step.replace(' ', '-').replace('%', '')}.jsonl.gz"
    write(parse_scenario(_scenario(STEPS[step]), step), path, seed=11)
    return backtest(SPEC, path, eval_interval_s=EVAL_S)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("theory")


CASES = [
    pytest.param("errors 100%", "errors", "fast", 1.0, id="a total outage fires the fast tier at 14.4 x 1 % x 1m"),
    pytest.param("errors 100%", "errors", "slow", 1.0, id="a total outage fires the slow tier at 3 x 1 % x 4m plus for"),
    pytest.param("errors 50%", "errors", "fast", 0.5, id="half the attempts failing takes twice as long on the fast tier"),
    pytest.param("errors 50%", "errors", "slow", 0.5, id="half the attempts failing takes twice as long on the slow tier"),
    pytest.param("errors 20%", "errors", "fast", 0.2, id="a fifth of the attempts failing fires the fast tier at 43 s"),
    pytest.param("errors 20%", "errors", "slow", 0.2, id="a fifth of the attempts failing fires the slow tier at 46 s"),
    pytest.param("all slow", "ttff-p99", "fast", 1.0, id="every first frame slow fires the p99 fast tier as an outage"),
    pytest.param("all slow", "ttff-p99", "slow", 1.0, id="every first frame slow fires the p99 slow tier as an outage"),
    pytest.param("all slow", "ttff-p95", "fast", 1.0, id="the p95 objective's 5 % budget takes five times longer"),
    pytest.param("all slow", "ttff-p95", "slow", 1.0, id="the p95 slow tier fires after 3 x 5 % x 4m plus for"),
    pytest.param("all slow", "ttff-p90", "fast", 1.0, id="the p90 fast tier's factor adapted to its 10x max burn"),
]


@pytest.mark.parametrize(("step", "slo_name", "tier", "bad"), CASES)
def test_detection_time_is_on_the_theory_table(step: str, slo_name: str, tier: str, bad: float, tmp: Path) -> None:
    slo = SPEC.slo(slo_name)
    resolved = next(r for r in SPEC.resolved_tiers(slo) if r.name == tier)
    theory = detection_s(resolved, slo, bad)
    assert theory is not None
    result = outcome(step, tmp).result
    fired = [a for a in result["alerts"] if (a["slo"], a["tier"], a["region"]) == (slo_name, tier, INCIDENT)]
    assert fired, f"{slo_name} {tier} never fired"
    assert fired[0]["incident"] == "step"
    measured = fired[0]["detection_delay_s"]
    # One interval: the first tick at or after the crossing (1e-6: float noise in the theory value).
    assert abs(measured - theory) <= EVAL_S + 1e-6, f"fired after {measured} s, theory {theory:.2f} s"


@pytest.mark.parametrize("step", list(STEPS), ids=[f"the calm region stays silent during '{s}'" for s in STEPS])
def test_the_calm_region_never_fires(step: str, tmp: Path) -> None:
    result = outcome(step, tmp).result
    assert [a for a in result["alerts"] + result["triggers"] if a["region"] == CALM] == []
    assert result["summary"]["false_pages"] == 0


TRIGGERS = [
    pytest.param("all slow", "scale_out", id="scale-out breaches for: after its window's p95 crosses 200 ms"),
    pytest.param("all slow", "failover", id="failover breaches for: after its window's p99 crosses 300 ms"),
    pytest.param("errors 100%", "failover", id="failover on errors breaches for: after 3 % of its window fails"),
]


@pytest.mark.parametrize(("step", "name"), TRIGGERS)
def test_trigger_breaches_for_after_its_window_crosses(step: str, name: str, tmp: Path) -> None:
    """A full step: the window's clause crosses once (1 - q) (or the error limit) of it is bad, then ``for``."""
    trigger = next(t for t in SPEC.triggers if t.name == name)
    crossings = []
    for cond in trigger.conditions:
        if cond.above_ratio is not None and STEPS[step].get("error_ratio"):
            crossings.append(cond.above_ratio / STEPS[step]["error_ratio"] * trigger.window_s)
        elif cond.quantile is not None and STEPS[step].get("latency_factor"):
            crossings.append((1.0 - cond.quantile) * trigger.window_s)
    theory = min(crossings) + trigger.for_s
    fired = [a for a in outcome(step, tmp).result["triggers"] if (a["trigger"], a["region"]) == (name, INCIDENT)]
    assert fired and fired[0]["incident"] == "step"
    assert abs(fired[0]["detection_delay_s"] - theory) <= EVAL_S + 1e-6, (fired[0], theory)
