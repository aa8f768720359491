"""The generated rules and Alertmanager config, checked by the real tools.

promtool checks and runs the generated unit tests (default spec, the short
test spec and the QoE one); mutated rules must make those tests fail, so they
are not tests that cannot fail. amtool checks the config and its routes; a real Alertmanager
proves a page inhibits the ticket of the same SLO and region.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from alerts import alertmanager
from alerts.yamlout import dump
from slo import conventions as c
from slo import promql
from slo.spec import load_spec
from streamslo.generate import generate
from streamslo.testing.prometheus import AMTOOL, PROMTOOL, Server
from tests.fixtures_prometheus import require

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parent.parent
SHORT_SPEC = "tests/specs/short.yaml"
QOE_SPEC = "tests/specs/qoe.yaml"
DEFAULT_SPEC = "slo/specs/default.yaml"


def _write(spec_path: str, out: Path) -> dict[str, str]:
    spec, _ = load_spec(ROOT / spec_path)
    files = generate(spec, spec_path)
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    return files


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("spec_path", [DEFAULT_SPEC, SHORT_SPEC], ids=["default spec rules", "short spec rules"])
def test_promtool_accepts_the_rules(spec_path: str, tmp_path: Path) -> None:
    promtool = require(PROMTOOL, "promtool")
    _write(spec_path, tmp_path)
    result = _run([promtool, "check", "rules", "prometheus/rules.yml"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def _test_files(spec_path: str) -> list[str]:
    spec, _ = load_spec(ROOT / spec_path)
    return sorted(rel for rel in generate(spec, spec_path) if rel.endswith(".test.yml"))


@pytest.mark.parametrize(
    ("spec_path", "test_file"),
    [(SHORT_SPEC, f) for f in _test_files(SHORT_SPEC)]
    + [(QOE_SPEC, f) for f in _test_files(QOE_SPEC)]
    + [pytest.param(DEFAULT_SPEC, f, marks=pytest.mark.slow) for f in _test_files(DEFAULT_SPEC)],
    ids=[f"short spec {f.split('/')[-1]} passes promtool test rules" for f in _test_files(SHORT_SPEC)]
    + [f"QoE spec {f.split('/')[-1]} passes promtool test rules" for f in _test_files(QOE_SPEC)]
    + [f"default spec {f.split('/')[-1]} passes promtool test rules" for f in _test_files(DEFAULT_SPEC)],
)
def test_generated_promtool_tests_pass(spec_path: str, test_file: str, tmp_path: Path) -> None:
    promtool = require(PROMTOOL, "promtool")
    _write(spec_path, tmp_path)
    result = _run([promtool, "test", "rules", Path(test_file).name], tmp_path / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr


def _edit_rules(name: str, slo: str | None, change: Callable[[dict[str, Any]], None]) -> Callable[[str], str]:
    """A mutation: ``change`` applied to every rule recorded or alerting as ``name`` (of ``slo``, when given)."""

    def mutate(text: str) -> str:
        doc = yaml.safe_load(text)
        for group in doc["groups"]:
            for rule in group["rules"]:
                if name in (rule.get("record"), rule.get("alert")) and slo in (None, rule.get("labels", {}).get("slo")):
                    change(rule)
        return dump(doc, "# mutated")

    return mutate


def _replace_in_expr(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def change(rule: dict[str, Any]) -> None:
        rule["expr"] = rule["expr"].replace(old, new)

    return change


def _played_only(fn: promql.RangeFn, window: str) -> Callable[[dict[str, Any]], None]:
    """Rebuffering over played seconds alone: stall / played instead of stall / (stall + played)."""
    watched = promql.sli_total(c.SLI_REBUFFERING, fn, window, "rum")
    played = promql.sum_by((c.LABEL_REGION,), fn(promql.selector(c.METRIC_PLAYED_SECONDS, kind="rum"), window))
    return _replace_in_expr(watched, played)


def _set_severity(severity: str) -> Callable[[dict[str, Any]], None]:
    def change(rule: dict[str, Any]) -> None:
        rule["labels"][c.LABEL_SEVERITY] = severity

    return change


# Each mutation breaks one property the generated tests claim to prove.
MUTATIONS = [
    pytest.param(
        SHORT_SPEC,
        "rules.tier-fast.test.yml",
        lambda rules: re.sub(r"streamslo:sli_events:count1m\{slo=\"ttff-p90\"\} >= 20", 'streamslo:sli_events:count1m{slo="ttff-p90"} >= 0', rules),
        "ttff-p90",
        id="removing the low-traffic guard makes the quiet region fire and the test fail",
    ),
    pytest.param(
        SHORT_SPEC,
        "rules.tier-fast.test.yml",
        lambda rules: rules.replace('streamslo:burn_rate:ratio_rate1m{slo="ttff-p90"}) >= 9', 'streamslo:burn_rate:ratio_rate1m{slo="ttff-p90"}) >= 14.4'),
        "ttff-p90",
        id="keeping the dead 14.4x factor on a p90 SLO never fires and the test fails",
    ),
    pytest.param(
        SHORT_SPEC,
        "rules.test.yml",
        lambda rules: rules.replace("for: 20s", "for: 5s"),
        "StreamSLOScaleOut",
        id="a trigger with a shorter for: fires too early and the test fails",
    ),
    pytest.param(
        SHORT_SPEC,
        "rules.tier-fast.test.yml",
        lambda rules: rules.replace('le=~"0\\\\.150*"', 'le=~"0\\\\.20*"'),
        "ttff-p90",
        id="reading the wrong bucket for a threshold makes the test fail",
    ),
    pytest.param(
        SHORT_SPEC,
        "rules.records.test.yml",
        lambda rules: rules.replace('le=~"0\\\\.150*"', 'le=~"0\\\\.20*"'),
        "ttff-p90",
        id="reading the wrong bucket makes the exact ratio record wrong and the test fail",
    ),
    pytest.param(
        SHORT_SPEC,
        "rules.pipeline.test.yml",
        lambda rules: rules.replace("[10m])) > 0", "[10m])) >= 0"),
        "flat stays silent",
        id="a lag alert that ignores whether lag grows fires on flat lag and the test fails",
    ),
    pytest.param(
        QOE_SPEC,
        "rules.records.test.yml",
        _edit_rules(c.sli_error_record("10s"), c.SLI_REBUFFERING, _played_only(promql.rate, "10s")),
        "rebuffering",
        id="rebuffering computed as stall / played instead of stall / (stall + played) fails the records test",
    ),
    pytest.param(
        QOE_SPEC,
        "rules.records.test.yml",
        _edit_rules(c.events_record("1m"), c.SLI_REBUFFERING, _played_only(promql.increase, "1m")),
        "rebuffering",
        id="a rebuffering guard counting played seconds only fails the records test",
    ),
    pytest.param(
        QOE_SPEC,
        "rules.records.test.yml",
        _edit_rules(
            c.sli_error_record("10s"),
            c.SLI_EXITS_BEFORE_START,
            _replace_in_expr(c.METRIC_EXITS_BEFORE_START, c.METRIC_ERRORS),
        ),
        "exits_before_start",
        id="exits before start read from the fatal-error counter fails the records test",
    ),
    pytest.param(
        QOE_SPEC,
        "rules.tier-fast.test.yml",
        _edit_rules("StreamSLOErrorBudgetBurnFast", c.SLI_EXITS_BEFORE_START, _set_severity(c.SEVERITY_PAGE)),
        "exits_before_start",
        id="a max_severity ticket SLO whose fast tier pages fails the tier test",
    ),
    pytest.param(
        QOE_SPEC,
        "rules.test.yml",
        _edit_rules(c.ALERT_FAILOVER, None, _replace_in_expr(") > 0.05", ") > 0.5")),
        c.ALERT_FAILOVER,
        id="a trigger's rebuffering clause at ten times its limit never fires and the test fails",
    ),
]


@pytest.mark.parametrize(("spec_path", "test_file", "mutate", "failing"), MUTATIONS)
def test_generated_promtool_tests_catch_broken_rules(
    spec_path: str, test_file: str, mutate: Callable[[str], str], failing: str, tmp_path: Path
) -> None:
    promtool = require(PROMTOOL, "promtool")
    _write(spec_path, tmp_path)
    rules = tmp_path / "prometheus" / "rules.yml"
    original = rules.read_text()
    mutated = mutate(original)
    assert yaml.safe_load(mutated) != yaml.safe_load(original), "the mutation did not apply"
    rules.write_text(mutated)
    result = _run([promtool, "test", "rules", test_file], tmp_path / "prometheus")
    assert result.returncode != 0, "promtool passed rules that are wrong"
    assert failing in result.stdout + result.stderr


# --- Alertmanager ----------------------------------------------------------------------


def test_amtool_accepts_the_config(tmp_path: Path) -> None:
    amtool = require(AMTOOL, "amtool")
    _write(DEFAULT_SPEC, tmp_path)
    result = _run([amtool, "check-config", "alertmanager/alertmanager.yml"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=StreamSLOErrorBudgetBurnFast", "severity=page", "slo=ttff-p95", "region=eu-west-1"], alertmanager.RECEIVER_PAGE),
        (["alertname=StreamSLOErrorBudgetBurnSlow", "severity=ticket", "slo=ttff-p95", "region=eu-west-1"], alertmanager.RECEIVER_TICKET),
        (["alertname=StreamSLONoData", "region=eu-west-1"], alertmanager.RECEIVER_TICKET),
    ],
    ids=[
        "a page goes to PagerDuty",
        "a ticket goes to the ticket webhook",
        "an alert without severity falls back to the ticket receiver",
    ],
)
def test_amtool_routes(labels: list[str], receiver: str, tmp_path: Path) -> None:
    amtool = require(AMTOOL, "amtool")
    _write(DEFAULT_SPEC, tmp_path)
    argv = [amtool, "config", "routes", "test", "--config.file=alertmanager/alertmanager.yml", *labels]
    result = _run(argv, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def _post_alert(am: Server, labels: dict[str, str]) -> None:
    now = datetime.now(UTC)
    body = [{"labels": labels, "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=5)).isoformat()}]
    httpx.post(f"{am.url}/api/v2/alerts", json=body, timeout=5).raise_for_status()


def _inhibited(am: Server, alertname: str, region: str) -> bool:
    alerts = httpx.get(f"{am.url}/api/v2/alerts", timeout=5).json()
    for alert in alerts:
        if alert["labels"]["alertname"] == alertname and alert["labels"]["region"] == region:
            return bool(alert["status"]["inhibitedBy"])
    raise AssertionError(f"{alertname} {region} not in Alertmanager")


def test_a_page_inhibits_the_ticket_of_the_same_slo_and_region(
    alertmanager_server: Callable[[str], Server], tmp_path: Path
) -> None:
    files = _write(DEFAULT_SPEC, tmp_path)
    key = tmp_path / "routing_key"
    key.write_text("test-routing-key\n")
    config = files["alertmanager/alertmanager.yml"].replace(alertmanager.ROUTING_KEY_FILE, str(key))
    # Sinks that refuse connections: notification failures must not matter here.
    config = config.replace(alertmanager.PAGERDUTY_EVENTS_URL, "http://127.0.0.1:9/")
    am = alertmanager_server(config)
    page = {"alertname": "StreamSLOErrorBudgetBurnFast", "severity": "page", "tier": "fast", "slo": "ttff-p95"}
    ticket = page | {"alertname": "StreamSLOErrorBudgetBurnSlow", "severity": "ticket", "tier": "slow"}
    _post_alert(am, page | {"region": "eu-west-1"})
    _post_alert(am, ticket | {"region": "eu-west-1"})
    _post_alert(am, ticket | {"region": "us-east-1"})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _inhibited(am, ticket["alertname"], "eu-west-1"):
        time.sleep(0.2)
    assert _inhibited(am, ticket["alertname"], "eu-west-1")
    assert not _inhibited(am, ticket["alertname"], "us-east-1")
    assert not _inhibited(am, page["alertname"], "eu-west-1")
