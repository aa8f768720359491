"""The backtest's fire and resolve times equal real Prometheus rule evaluation on the same series.

A simulated scenario (an outage in one region, then a latency regression in
the other) is backtested with a 1 s evaluation interval; at every tick the
backtest also exports the series its engine exposes
(``streamslo/backtest/promexport.py``). ``promtool test rules`` then
evaluates the generated rules (``alerts/alerting.py``) over those series and
must see, one interval before and one interval after every fire and every
resolve the backtest reports, exactly the alerts the backtest says are
firing then: every burn-rate tier (the backtest evaluates their rules as
Prometheus does, ``streamslo/backtest/promrate.py``) and the scale-out
trigger (the engine's own state, as the health endpoint and the HPA see
it). The failover alert agrees within two intervals (its errors clause,
see the last test). A control shows the comparison fails when the
backtest's times are shifted by two intervals.
"""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from alerts import alerting
from alerts import promtool_series as ps
from alerts.yamlout import dump
from slo import conventions as c
from slo.durations import format_duration
from slo.model import Spec
from slo.spec import load_spec
from streamslo.backtest.promexport import SeriesExport, promtool_test
from streamslo.backtest.run import backtest
from streamslo.backtest.scenario import parse_scenario
from streamslo.backtest.simulate import write
from streamslo.testing.prometheus import PROMTOOL
from tests.fixtures_prometheus import require

ROOT = Path(__file__).resolve().parent.parent
SPEC: Spec = load_spec(ROOT / "tests" / "specs" / "short.yaml")[0]
STEP = 1.0
RUNBOOK = "docs/runbooks.md"
BURN = {alerting.burn_alert_name(t) for t in SPEC.tiers}
SCALE_OUT, FAILOVER = (alerting.trigger_alert_name(t) for t in SPEC.triggers)
SCENARIO = {
    "hours": 0.3, "regions": ["us-east-1", "eu-west-1"], "attempts_per_s": 30, "events_per_beacon": 4,
    "effects": [
        {"name": "outage", "region": "eu-west-1", "start": "5m", "end": "7m", "error_ratio": 1.0},
        {"name": "regression", "region": "us-east-1", "start": "10m", "end": "13m", "latency_factor": 2.5},
    ],
}


@cache
def _run(tmp: Path) -> tuple[dict[str, Any], SeriesExport]:
    path = tmp / "scenario.jsonl.gz"
    write(parse_scenario(SCENARIO, "outage-then-regression"), path, seed=3)
    export = SeriesExport(SPEC)
    outcome = backtest(SPEC, path, eval_interval_s=STEP, on_tick=export)
    return outcome.result, export


def _rules(spec: Spec) -> dict[tuple[str, str | None], tuple[dict[str, Any], dict[str, str]]]:
    """(alertname, slo or trigger) -> the generated rule and the labels its series add."""
    out: dict[tuple[str, str | None], tuple[dict[str, Any], dict[str, str]]] = {}
    for slo in spec.slos:
        for resolved in spec.resolved_tiers(slo):
            rule = alerting.burn_rule(spec, slo, resolved, RUNBOOK)
            # Burn alerts carry only the documented labels (no window: alerting.alert_label_names).
            out[(rule["alert"], slo.name)] = rule, {}
    for trigger in spec.triggers:
        rule = alerting.trigger_rule(spec, trigger, RUNBOOK)
        out[(rule["alert"], trigger.name)] = rule, {}
    return out


def _checks(result: dict[str, Any], names: set[str], shift: float = 0.0, within: float = STEP,
            spec: Spec = SPEC) -> list[dict[str, Any]]:
    """At each transition +- ``within``: every alert of that name the backtest has firing then."""
    rules = _rules(spec)
    firings = [{**a, "key": a["slo"] or a["trigger"]} for a in result["alerts"] + result["triggers"]
               if a["name"] in names]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for f in firings:
        by_name.setdefault(f["name"], []).append(f)
    checks = []
    for name, items in sorted(by_name.items()):
        edges = sorted({f["fired_at"] for f in items} | {f["resolved_at"] for f in items if f["resolved_at"]})
        for edge in edges:
            for t in (edge - within, edge + within):
                if any(e != edge and abs(e - t) <= within for e in edges):
                    continue  # two transitions of one alert name this close: no single expectation
                firing = [f for f in items if f["fired_at"] + shift <= t
                          and (f["resolved_at"] is None or t < f["resolved_at"] + shift)]
                exp = []
                for f in firing:
                    rule, extra = rules[(name, f["key"])]
                    exp.append(ps.expected(rule, {c.LABEL_REGION: f["region"]} | extra))
                checks.append({"eval_time": format_duration(t), "alertname": name, "exp_alerts": exp})
    return checks


def _promtool(tmp: Path, export: SeriesExport, checks: list[dict[str, Any]], spec: Spec = SPEC,
             step: float = STEP) -> subprocess.CompletedProcess[str]:
    promtool = require(PROMTOOL, "promtool")
    (tmp / "rules.yml").write_text(dump({"groups": alerting.all_groups(spec, RUNBOOK)}, "# generated"))
    test = promtool_test(export, ["rules.yml"], step, checks)
    (tmp / "backtest.test.yml").write_text(dump(test, "# series exported by the backtest"))
    return subprocess.run([promtool, "test", "rules", "backtest.test.yml"], cwd=tmp,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("backtest-promtool")


@pytest.mark.prometheus
def test_backtest_fire_and_resolve_times_equal_promtool_within_one_interval(tmp: Path) -> None:
    result, export = _run(tmp)
    names = {(a["name"], a["slo"] or a["trigger"]) for a in result["alerts"] + result["triggers"]}
    # The scenario exercises both SLI families, both tiers and both triggers.
    assert {("StreamSLOErrorBudgetBurnFast", "errors"), ("StreamSLOErrorBudgetBurnSlow", "errors"),
            ("StreamSLOErrorBudgetBurnFast", "ttff-p99"), ("StreamSLORegionFailover", "failover"),
            ("StreamSLOScaleOut", "scale_out")} <= names
    assert all(a["resolved_at"] is not None for a in result["alerts"]), "every alert resolves before the end"
    checks = _checks(result, BURN | {SCALE_OUT})
    assert len(checks) >= 3 * len(names)
    run = _promtool(tmp, export, checks)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    print(f"\nbacktest vs promtool: {len(checks)} checks at +-{STEP:g} s around "
          f"{len(result['alerts']) + len(result['triggers'])} firings agree")


@pytest.mark.prometheus
def test_the_comparison_fails_when_the_times_are_two_intervals_off(tmp: Path) -> None:
    result, export = _run(tmp)
    run = _promtool(tmp, export, _checks(result, BURN | {SCALE_OUT}, shift=2 * STEP))
    assert run.returncode != 0
    assert "FAILED" in run.stdout + run.stderr


@pytest.mark.prometheus
def test_the_failover_alert_rule_lags_the_engine_by_at_most_two_intervals(tmp: Path) -> None:
    """The failover trigger's errors clause: the rule's rate() over counters counts events when
    they arrive, the engine's window by event time, and keep_firing_for counts from the last
    true evaluation where recover_for counts from the first clear one; so within two intervals."""
    result, export = _run(tmp)
    assert any(a["name"] == FAILOVER for a in result["triggers"])
    run = _promtool(tmp, export, _checks(result, {FAILOVER}, within=2 * STEP))
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


DEFAULT: Spec = load_spec(ROOT / "slo" / "specs" / "default.yaml")[0]
LONG_STEP = 10.0  # deploy/prometheus.yml's evaluation interval; divides the hour, as counted windows need
LONG_SCENARIO = {
    "hours": 5, "regions": ["us-east-1", "eu-west-1"], "attempts_per_s": 4, "interactions_per_attempt": 0,
    "effects": [{"name": "outage", "region": "eu-west-1", "start": "2h", "end": "2h30m", "error_ratio": 1.0}],
}


@pytest.mark.prometheus
@pytest.mark.slow
def test_counted_long_windows_fire_and_resolve_as_promtool_evaluates_them(tmp_path: Path) -> None:
    """The default spec's 1d and 3d tiers sum hourly counts (alerts/long_windows.py): the backtest too."""
    path = tmp_path / "long.jsonl.gz"
    write(parse_scenario(LONG_SCENARIO, "outage-5h"), path, seed=5)
    export = SeriesExport(DEFAULT)
    result = backtest(DEFAULT, path, eval_interval_s=LONG_STEP, on_tick=export).result
    fired = {(a["slo"], a["tier"]): a for a in result["alerts"] if a["region"] == "eu-west-1"}
    # The long windows see the outage only once the 3:00 count includes it.
    assert fired[("errors", "slow")]["fired_at"] == 3 * 3600
    assert fired[("errors", "slowest")]["fired_at"] == 3 * 3600
    assert fired[("errors", "slow")]["resolved_at"] is not None
    burn = {alerting.burn_alert_name(t) for t in DEFAULT.tiers}
    checks = _checks(result, burn, within=LONG_STEP, spec=DEFAULT)
    run = _promtool(tmp_path, export, checks, spec=DEFAULT, step=LONG_STEP)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
