"""The generated rules and Alertmanager config, checked by the real tools.

promtool checks and runs the generated unit tests (default spec and the short
test spec); mutated rules must make those tests fail, so they are not tests
that cannot fail. amtool checks the config and its routes; a real Alertmanager
proves a page inhibits the ticket of the same SLO and region.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from alerts import alertmanager
from slo.spec import load_spec
from streamslo.generate import generate
from tests.fixtures_prometheus import AMTOOL, PROMTOOL, Server, require

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parent.parent
SHORT_SPEC = "tests/specs/short.yaml"
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
    + [pytest.param(DEFAULT_SPEC, f, marks=pytest.mark.slow) for f in _test_files(DEFAULT_SPEC)],
    ids=[f"short spec {f.split('/')[-1]} passes promtool test rules" for f in _test_files(SHORT_SPEC)]
    + [f"default spec {f.split('/')[-1]} passes promtool test rules" for f in _test_files(DEFAULT_SPEC)],
)
def test_generated_promtool_tests_pass(spec_path: str, test_file: str, tmp_path: Path) -> None:
    promtool = require(PROMTOOL, "promtool")
    _write(spec_path, tmp_path)
    result = _run([promtool, "test", "rules", Path(test_file).name], tmp_path / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr


# Each mutation breaks one property the generated tests claim to prove.
MUTATIONS = [
    (
        "rules.tier-fast.test.yml",
        lambda rules: re.sub(r"streamslo:sli_events:count1m\{slo=\"ttff-p90\"\} >= 20", 'streamslo:sli_events:count1m{slo="ttff-p90"} >= 0', rules),
        "ttff-p90",
    ),
    (
        "rules.tier-fast.test.yml",
        lambda rules: rules.replace('streamslo:burn_rate:ratio_rate1m{slo="ttff-p90"}) >= 9', 'streamslo:burn_rate:ratio_rate1m{slo="ttff-p90"}) >= 14.4'),
        "ttff-p90",
    ),
    (
        "rules.test.yml",
        lambda rules: rules.replace("for: 20s", "for: 5s"),
        "StreamSLOScaleOut",
    ),
    (
        "rules.tier-fast.test.yml",
        lambda rules: rules.replace('le=~"0\\\\.150*"', 'le=~"0\\\\.20*"'),
        "ttff-p90",
    ),
    (
        "rules.pipeline.test.yml",
        lambda rules: rules.replace("[10m])) > 0", "[10m])) >= 0"),
        "flat stays silent",
    ),
]


@pytest.mark.parametrize(
    ("test_file", "mutate", "failing"),
    MUTATIONS,
    ids=[
        "removing the low-traffic guard makes the quiet region fire and the test fail",
        "keeping the dead 14.4x factor on a p90 SLO never fires and the test fails",
        "a trigger with a shorter for: fires too early and the test fails",
        "reading the wrong bucket for a threshold makes the test fail",
        "a lag alert that ignores whether lag grows fires on flat lag and the test fails",
    ],
)
def test_generated_promtool_tests_catch_broken_rules(
    test_file: str, mutate: Callable[[str], str], failing: str, tmp_path: Path
) -> None:
    promtool = require(PROMTOOL, "promtool")
    _write(SHORT_SPEC, tmp_path)
    rules = tmp_path / "prometheus" / "rules.yml"
    original = rules.read_text()
    mutated = mutate(original)
    assert mutated != original, "the mutation did not apply"
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
