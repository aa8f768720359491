"""Every cell of the inhibition matrix (docs/alerting.md) on a real Alertmanager, and the routes with amtool.

amtool has no offline inhibition tester, so each cell is proved on a real
Alertmanager 0.25 running the generated config: the source and the target
alert of a cell are posted to ``/api/v2/alerts`` in a region of their own,
and ``status.inhibitedBy`` of the target must be non-empty exactly for the
cells :func:`alerts.alertmanager.inhibitions` lists for the default spec. Alerts carry exactly the
labels the generated rules give them (``alerting.alert_label_names``).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from alerts import alerting, alertmanager
from slo import conventions as c
from slo.spec import load_spec
from streamslo.generate import generate
from streamslo.testing.prometheus import AMTOOL, Server
from tests.fixtures_prometheus import require

ROOT = Path(__file__).resolve().parents[1]
SPEC, _ = load_spec(ROOT / "slo/specs/default.yaml")
FILES = generate(SPEC, "slo/specs/default.yaml")
CONFIG = FILES["alertmanager/alertmanager.yml"]

# One alert per family, with the labels the generated rule fires with (minus region).
FAMILIES: dict[str, dict[str, str]] = {
    "burn page": {"alertname": "StreamSLOErrorBudgetBurnFast", "severity": "page", "tier": "fast",
                  "slo": "ttff-p95", "sli": "ttff"},
    "burn ticket": {"alertname": "StreamSLOErrorBudgetBurnSlow", "severity": "ticket", "tier": "slow",
                    "slo": "ttff-p95", "sli": "ttff"},
    # A page tier of an SLO with max_severity: ticket: a ticket, silencing nothing.
    "capped burn": {"alertname": "StreamSLOErrorBudgetBurnFast", "severity": "ticket", "tier": "fast",
                    "slo": "exits_before_start", "sli": "exits_before_start"},
    "failover": {"alertname": c.ALERT_FAILOVER, "severity": "page", "trigger": "failover"},
    "scale-out": {"alertname": c.ALERT_SCALE_OUT, "severity": "ticket", "trigger": "scale_out"},
    "no data": {"alertname": c.ALERT_NO_DATA, "severity": "ticket"},
    "refusals": {"alertname": c.ALERT_INGEST_REFUSALS, "severity": "ticket"},
    "lag": {"alertname": c.ALERT_CONSUMER_LAG, "severity": "ticket"},
}
REGIONAL = {name for name, labels in FAMILIES.items() if labels["alertname"] not in
            (c.ALERT_INGEST_REFUSALS, c.ALERT_CONSUMER_LAG)}
# The matrix of docs/alerting.md: (source, target) pairs that silence; every other pair never does.
SILENCES = {("burn page", "burn ticket"), ("failover", "scale-out"), ("lag", "no data")}
CELLS = [(s, t) for s in FAMILIES for t in FAMILIES if s != t]


def _labels(family: str, region: str) -> dict[str, str]:
    labels = dict(FAMILIES[family])
    if family in REGIONAL:
        labels[c.LABEL_REGION] = region
    return labels


def test_the_families_carry_exactly_the_generated_label_sets() -> None:
    names = alerting.alert_label_names(SPEC)
    for family, labels in FAMILIES.items():
        assert names[labels["alertname"]] == set(_labels(family, "r")) | {"alertname"}, family


def test_the_matrix_here_is_the_generated_one() -> None:
    assert len(alertmanager.inhibitions(SPEC)) == len(SILENCES)
    assert all("equal" in rule for rule in alertmanager.config(SPEC)["inhibit_rules"])


@pytest.mark.parametrize(
    ("family", "receiver"),
    [
        ("burn page", alertmanager.RECEIVER_PAGE),
        ("burn ticket", alertmanager.RECEIVER_TICKET),
        ("capped burn", alertmanager.RECEIVER_TICKET),
        ("failover", alertmanager.RECEIVER_PAGE),
        ("scale-out", alertmanager.RECEIVER_TICKET),
        ("no data", alertmanager.RECEIVER_TICKET),
        ("refusals", alertmanager.RECEIVER_TICKET),
        ("lag", alertmanager.RECEIVER_TICKET),
    ],
    ids=[
        "a burn page goes to PagerDuty",
        "a burn ticket goes to the ticket webhook",
        "a fast-tier alert of a max_severity ticket SLO goes to the ticket webhook",
        "a failover page goes to PagerDuty",
        "a scale-out ticket goes to the ticket webhook",
        "a no-data ticket goes to the ticket webhook",
        "an ingest-refusals ticket goes to the ticket webhook",
        "a consumer-lag ticket goes to the ticket webhook",
    ],
)
def test_amtool_routes_every_family(family: str, receiver: str, tmp_path: Path) -> None:
    amtool = require(AMTOOL, "amtool")
    (tmp_path / "am.yml").write_text(CONFIG)
    check = subprocess.run([amtool, "check-config", "am.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    labels = [f"{k}={v}" for k, v in _labels(family, "eu-west-1").items()]
    route = subprocess.run([amtool, "config", "routes", "test", "--config.file=am.yml", *labels],
                           cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert route.stdout.strip() == receiver, route.stdout + route.stderr


def _post(am: Server, alerts: list[dict[str, str]]) -> None:
    now = datetime.now(UTC)
    body = [{"labels": a, "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=10)).isoformat()}
            for a in alerts]
    httpx.post(f"{am.url}/api/v2/alerts", json=body, timeout=5).raise_for_status()


Key = tuple[str, str, str]


def _inhibited(am: Server) -> dict[Key, bool]:
    """(alertname, slo or "", region or "") -> whether Alertmanager reports it inhibited."""
    alerts = httpx.get(f"{am.url}/api/v2/alerts", timeout=5).json()
    return {(a["labels"]["alertname"], a["labels"].get("slo", ""), a["labels"].get("region", "")):
            bool(a["status"]["inhibitedBy"]) for a in alerts}


def _expected(posted: list[tuple[str, str]]) -> dict[Key, bool]:
    """(alertname, slo or "", region or "") -> silenced, by the matrix, given the posted (family, region) alerts.

    A regional source silences only its own region's targets; a global one
    (no region label) every region's.
    """
    out: dict[Key, bool] = {}
    for family, region in posted:
        labels = FAMILIES[family]
        key = (labels["alertname"], labels.get("slo", ""), region if family in REGIONAL else "")
        out[key] = out.get(key, False) or any(
            (src, family) in SILENCES and (src not in REGIONAL or r == region) for src, r in posted
        )
    return out


def _check(am: Server, cells: list[tuple[str, str]], first: int, posted: list[tuple[str, str]]) -> None:
    """Post each cell's source and target in region r<i>, then compare every alert with the matrix."""
    for i, cell in enumerate(cells, start=first):
        posted += [(family, f"r{i}") for family in cell]
    _post(am, [_labels(f, r) for f, r in posted[-2 * len(cells):]])
    expected = _expected(posted)
    deadline = time.monotonic() + 20
    got = _inhibited(am)
    while time.monotonic() < deadline and any(got.get(k) is not v for k, v in expected.items()):
        time.sleep(0.25)
        got = _inhibited(am)
    wrong = {k: got.get(k) for k, v in expected.items() if got.get(k) is not v}
    assert not wrong, f"alerts (not) inhibited against the matrix: {wrong}"


def _generated_alertmanager(alertmanager_server: Callable[[str], Server], tmp_path: Path) -> Server:
    """A real Alertmanager on the generated config; its PagerDuty receiver points nowhere."""
    key = tmp_path / "routing_key"
    key.write_text("test-routing-key\n")
    config = CONFIG.replace(alertmanager.ROUTING_KEY_FILE, str(key))
    return alertmanager_server(config.replace(alertmanager.PAGERDUTY_EVENTS_URL, "http://127.0.0.1:9/"))


@pytest.mark.prometheus
def test_every_cell_of_the_inhibition_matrix_on_a_real_alertmanager(
    alertmanager_server: Callable[[str], Server], tmp_path: Path
) -> None:
    am = _generated_alertmanager(alertmanager_server, tmp_path)
    # Regional pairs first, a region of their own per cell; then every pair
    # with a global alert (no region: refusals, lag), which reaches all regions.
    regional = [cell for cell in CELLS if set(cell) <= REGIONAL]
    posted: list[tuple[str, str]] = []
    _check(am, regional, 0, posted)
    assert sum(_expected(posted).values()) == 4, "both regional silencing pairs, each posted in both orders"
    _check(am, [cell for cell in CELLS if not set(cell) <= REGIONAL], len(regional), posted)
    # The bug the matrix fixes: a failover page no longer silences the region's no-data ticket.
    assert ("failover", "no data") in CELLS and ("failover", "no data") not in SILENCES


@pytest.mark.prometheus
def test_a_burn_page_of_another_slo_silences_nothing(
    alertmanager_server: Callable[[str], Server], tmp_path: Path
) -> None:
    am = _generated_alertmanager(alertmanager_server, tmp_path)
    page = _labels("burn page", "eu-west-1") | {"slo": "errors", "sli": "errors"}
    ticket = _labels("burn ticket", "eu-west-1")
    same = _labels("burn ticket", "eu-west-1") | {"slo": "errors", "sli": "errors", "alertname": "StreamSLOErrorBudgetBurnSlowest"}
    _post(am, [page, ticket, same])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not _inhibited(am).get(("StreamSLOErrorBudgetBurnSlowest", "errors", "eu-west-1")):
        time.sleep(0.25)
    got = _inhibited(am)
    assert got[("StreamSLOErrorBudgetBurnSlowest", "errors", "eu-west-1")], "the same SLO's ticket is silenced"
    assert not got[("StreamSLOErrorBudgetBurnSlow", "ttff-p95", "eu-west-1")], "another SLO's ticket is not"


@pytest.mark.prometheus
def test_the_old_severity_only_rule_fails_the_matrix(
    alertmanager_server: Callable[[str], Server], tmp_path: Path
) -> None:
    """page silences ticket with equal [slo, region]: a failover page silenced the region's no-data ticket."""
    old = {"source_matchers": ['severity="page"'], "target_matchers": ['severity="ticket"'], "equal": ["slo", "region"]}
    doc = yaml.safe_load(CONFIG)
    doc["inhibit_rules"] = [old]
    doc["receivers"] = [{"name": r["name"]} for r in doc["receivers"]]
    am = alertmanager_server(yaml.safe_dump(doc))
    with pytest.raises(AssertionError, match=r"against the matrix: \{\('StreamSLONoData', '', 'r0'\): True\}"):
        _check(am, [("failover", "no data")], 0, [])
