"""The in-stream trigger state equals the generated alert rule on the same data (promtool).

The real engine (``streamslo/engine.py``: stage 1 + stage 2) is driven through
an incident in one region on a simulated clock, one flush per second. After
every flush its ``/metrics`` exposition is parsed, and the series the
generated failover rule reads become promtool ``input_series`` (one sample per
second). The engine's breach and recovery instants (``slo/health.py``:
``for`` then ``recover_for``) must be the instants the rule
(``for`` + ``keep_firing_for``) starts and stops firing, within one
evaluation interval: promtool is asked to see the alert silent one interval
before each engine instant and firing one interval after it (and the reverse
at recovery).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from alerts import alerting
from alerts import promtool_series as ps
from alerts.yamlout import dump
from slo import conventions as c
from slo.beacon import Beacon, Event
from slo.durations import format_duration
from slo.exposition import EngineCollector
from slo.spec import load_spec
from streamslo.engine import Engine
from streamslo.testing.prometheus import PROMTOOL
from tests.fixtures_prometheus import require

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "tests" / "specs" / "short.yaml"
T0 = 1_764_000_000.0
STEP = 1  # seconds: one flush, one scrape, one promtool evaluation
INCIDENT, CALM = "eu-west-1", "us-east-1"
READ = (c.METRIC_LATENCY_QUANTILE, c.METRIC_LATENCY_COUNT, c.METRIC_ATTEMPTS, c.METRIC_ERRORS)


def _beacons(region: str, t: float, slow: bool, seq: int) -> list[Beacon]:
    """8 first frames per second: 100 ms healthy, 500 ms in the incident (every 25th a fatal error)."""
    out = []
    for i in range(8):
        value = 500.0 if slow else 100.0 + i
        event = Event(c.EVENT_ERROR, t - 0.3, None, True) if slow and (seq + i) % 25 == 0 else \
            Event(c.EVENT_FIRST_FRAME, t - 0.3, value)
        out.append(Beacon(f"{region}-{seq}-{i}", 1, region, c.KIND_RUM, t, t - 0.1, [event]))
    return out


def _scrape(registry: CollectorRegistry, window: str) -> dict[str, float]:
    """The series the trigger rule reads, by promtool selector."""
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            if s.name not in READ:
                continue
            if s.name == c.METRIC_LATENCY_QUANTILE and s.labels.get(c.LABEL_WINDOW) != window:
                continue
            out[ps.series(s.name, dict(s.labels), "")["series"]] = s.value
    return out


def simulate(on_s: int, off_s: int, end_s: int) -> tuple[list[dict[str, float]], dict[str, list[bool]]]:
    """Run the engine; per second the scraped series and each region's failover breach flag."""
    spec = load_spec(SPEC)[0]
    now = T0
    engine = Engine(spec, clock=lambda: now)
    registry = CollectorRegistry()
    registry.register(EngineCollector(engine.snapshot, spec))
    window = format_duration(spec.triggers[1].window_s)
    samples, breached = [], {INCIDENT: [], CALM: []}
    for k in range(end_s + 1):
        now = T0 + k * STEP
        for region in (INCIDENT, CALM):
            for b in _beacons(region, now, region == INCIDENT and on_s <= k < off_s, k):
                engine.sink(b)
        engine.flush(now)
        samples.append(_scrape(registry, window))
        for region in breached:
            state = engine.snapshot(now).regions[region].triggers["failover"]
            breached[region].append(state.active)
    return samples, breached


def _series(samples: list[dict[str, float]]) -> list[ps.Series]:
    names = sorted({name for s in samples for name in s})
    return [
        {"series": name, "values": " ".join(ps.num(s[name]) if name in s else "_" for s in samples)}
        for name in names
    ]


def _edges(flags: list[bool]) -> tuple[int, int]:
    fire = flags.index(True)
    return fire, fire + flags[fire:].index(False)


@pytest.mark.prometheus
def test_engine_breach_and_recovery_match_the_generated_alert_rule(tmp_path: Path) -> None:
    promtool = require(PROMTOOL, "promtool")
    spec = load_spec(SPEC)[0]
    trigger = next(t for t in spec.triggers if t.name == "failover")
    samples, breached = simulate(on_s=20, off_s=90, end_s=150)
    fire, resolve = _edges(breached[INCIDENT])
    assert not any(breached[CALM])
    # The engine itself: breach `for` after the condition held, recovery `recover_for` after it cleared.
    assert 20 + trigger.for_s <= fire <= 20 + trigger.for_s + 3
    assert resolve - 90 >= trigger.recover_for_s

    rule = alerting.trigger_rule(spec, trigger, "docs/runbooks.md")
    firing = [ps.expected(rule, {c.LABEL_REGION: INCIDENT})]
    checks: list[tuple[int, list[dict[str, Any]]]] = [
        (fire - STEP, []), (fire + STEP, firing), (resolve - STEP, firing), (resolve + STEP, []),
    ]
    (tmp_path / "rules.yml").write_text(dump({"groups": alerting.all_groups(spec, "docs/runbooks.md")}, "# test"))
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": format_duration(STEP),
        "group_eval_order": ps.GROUP_ORDER,
        "tests": [{
            "interval": format_duration(STEP),
            "input_series": _series(samples),
            "alert_rule_test": [
                {"eval_time": format_duration(t), "alertname": rule["alert"], "exp_alerts": exp} for t, exp in checks
            ],
        }],
    }
    (tmp_path / "engine.test.yml").write_text(dump(test, "# series exported by the engine"))
    run = subprocess.run([promtool, "test", "rules", "engine.test.yml"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    print(f"\nengine vs promtool: engine breach at {fire}s, recovery at {resolve}s; "
          f"the rule agrees within {STEP}s at both")


@pytest.mark.prometheus
def test_the_comparison_can_fail_when_the_rule_differs(tmp_path: Path) -> None:
    """Control: the same series against a rule without keep_firing_for must fail the recovery check."""
    promtool = require(PROMTOOL, "promtool")
    spec = load_spec(SPEC)[0]
    trigger = next(t for t in spec.triggers if t.name == "failover")
    samples, breached = simulate(on_s=20, off_s=90, end_s=150)
    _, resolve = _edges(breached[INCIDENT])
    rule = alerting.trigger_rule(spec, trigger, "docs/runbooks.md")
    rule.pop("keep_firing_for")
    groups = [{"name": c.GROUP_TRIGGER_ALERTS, "rules": [rule]}]
    (tmp_path / "rules.yml").write_text(dump({"groups": groups}, "# test"))
    test = {
        "rule_files": ["rules.yml"], "evaluation_interval": "1s",
        "tests": [{
            "interval": "1s", "input_series": _series(samples),
            "alert_rule_test": [{"eval_time": format_duration(resolve - STEP), "alertname": rule["alert"],
                                 "exp_alerts": [ps.expected(rule, {c.LABEL_REGION: INCIDENT})]}],
        }],
    }
    (tmp_path / "engine.test.yml").write_text(dump(test, "# control"))
    run = subprocess.run([promtool, "test", "rules", "engine.test.yml"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
