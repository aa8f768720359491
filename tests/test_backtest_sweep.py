"""``--sweep``: one replay re-decided over a grid; at the spec's own settings it is the replay itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from slo.spec import load_spec
from streamslo.backtest.evaluate import intervals
from streamslo.backtest.run import Outcome, backtest
from streamslo.backtest.scenario import load_scenario
from streamslo.backtest.simulate import write
from streamslo.backtest.sweep import redecide, same_unit, sweep_tier, sweep_trigger

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "tests" / "specs" / "short.yaml"
SPEC = load_spec(SPEC_PATH)[0]


@pytest.fixture(scope="module")
def flapping(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Outcome]:
    path = tmp_path_factory.mktemp("sweep") / "flapping.jsonl.gz"
    write(load_scenario("flapping", hours=0.75), path, seed=31)
    return path, backtest(SPEC, path, eval_interval_s=1.0)


@pytest.mark.parametrize("name", [t.name for t in SPEC.triggers],
                         ids=[f"re-deciding {t.name} at its own limit and for: gives the replay's breaches"
                              for t in SPEC.triggers])
def test_the_offline_decision_equals_stage2_at_the_specs_own_settings(flapping: tuple[Path, Outcome],
                                                                      name: str) -> None:
    _, outcome = flapping
    tl = outcome.timeline
    trigger = next(t for t in SPEC.triggers if t.name == name)
    cond = trigger.conditions[0]
    limit = cond.above_ratio if cond.above_ratio is not None else cond.above_s
    assert limit is not None
    for region in tl.regions:
        ts = tl.triggers[(name, region)]
        assert redecide(trigger, tl.t, tl.start, ts.figures, ts.last_data_at, same_unit(trigger), limit) == ts.active
    assert any(any(tl.triggers[(name, r)].active) for r in tl.regions), "the scenario exercises the trigger"


def test_the_tier_sweep_at_the_specs_factor_counts_the_reported_alerts(flapping: tuple[Path, Outcome]) -> None:
    _, outcome = flapping
    (row,) = sweep_tier(outcome, "ttff-p95", "slow", [3.0])
    reported = [a for a in outcome.result["alerts"] if (a["slo"], a["tier"]) == ("ttff-p95", "slow")]
    assert row["detected"] + row["false"] + row["flaps"] == len(reported)


def test_a_longer_for_trades_detection_delay_for_fewer_flaps(flapping: tuple[Path, Outcome]) -> None:
    _, outcome = flapping
    rows = sweep_trigger(outcome, "scale_out", thresholds=[0.2], fors=[5.0, 20.0, 150.0])
    short, spec_for, long_ = rows
    assert short["mean_delay_s"] < spec_for["mean_delay_s"]
    assert long_["detected"] == 0, "a 2 min degraded phase never holds for 150 s"
    assert short["detected"] >= spec_for["detected"] > 0
    assert short["flaps"] + short["false"] >= spec_for["flaps"] + spec_for["false"]


def test_a_lower_threshold_fires_on_healthy_traffic(flapping: tuple[Path, Outcome]) -> None:
    _, outcome = flapping
    low, spec_limit = sweep_trigger(outcome, "scale_out", thresholds=[0.12, 0.2], fors=[20.0])
    assert low["false"] > spec_limit["false"] == 0  # healthy p95 is about 147 ms


def test_the_cli_prints_the_grid(flapping: tuple[Path, Outcome]) -> None:
    path, _ = flapping
    run = subprocess.run([sys.executable, "-m", "streamslo.cli", "backtest", "--spec", str(SPEC_PATH),
                          "--data", str(path), "--eval-interval", "1s", "--sweep", "scale_out",
                          "--threshold", "150,200,250", "--for", "10s,20s"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "sweep scale_out" in run.stdout and run.stdout.count("│ 200 ") == 2


def test_intervals_of_flags() -> None:
    assert intervals([0.0, 1.0, 2.0, 3.0], [False, True, True, False]) == [(1.0, 3.0)]


@pytest.mark.parametrize(("clause", "unit"), [(0, {0}), (1, {1, 2}), (2, {1, 2})],
                         ids=["a latency clause sweeps with the latency clauses only",
                              "the errors clause sweeps with every ratio clause (rebuffering too)",
                              "a rebuffering clause sweeps with the errors clause"])
def test_ratio_and_time_ratio_clauses_share_a_unit(clause: int, unit: set[int]) -> None:
    qoe = load_spec(ROOT / "tests" / "specs" / "qoe.yaml")[0]
    (failover,) = qoe.triggers  # ttff p99, errors ratio, rebuffering ratio
    assert same_unit(failover, clause) == unit
