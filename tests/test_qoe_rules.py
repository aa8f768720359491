"""Rules for the QoE SLIs (issue 16): which counters each SLI kind reads, the severity cap, ratio triggers.

promtool runs the generated tests of the QoE spec and their mutations in
``tests/test_alerts_promtool.py``; here, the expressions and labels the
generators write, table by table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alerts import alerting, detection
from slo import conventions as c
from slo import promql
from slo.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
DEFAULT, _ = load_spec(ROOT / "slo/specs/default.yaml")
QOE, _ = load_spec(ROOT / "tests/specs/qoe.yaml")
COUNTERS = (
    c.METRIC_LATENCY_COUNT,
    c.METRIC_LATENCY_BUCKET,
    c.METRIC_ATTEMPTS,
    c.METRIC_ERRORS,
    c.METRIC_EXITS_BEFORE_START,
    c.METRIC_REBUFFER_SECONDS,
    c.METRIC_PLAYED_SECONDS,
)


def _counters(expr: str) -> set[str]:
    return {m for m in COUNTERS if m + "{" in expr}


@pytest.mark.parametrize(
    ("slo_name", "bad", "total"),
    [
        pytest.param("ttff-p95", {c.METRIC_LATENCY_COUNT, c.METRIC_LATENCY_BUCKET}, {c.METRIC_LATENCY_COUNT},
                     id="a latency SLO's bad events are its count minus the bucket at its threshold"),
        pytest.param("live_latency-p95", {c.METRIC_LATENCY_COUNT, c.METRIC_LATENCY_BUCKET}, {c.METRIC_LATENCY_COUNT},
                     id="live latency is a latency SLO like ttff"),
        pytest.param("errors", {c.METRIC_ERRORS}, {c.METRIC_ATTEMPTS},
                     id="errors are fatal errors over playback attempts"),
        pytest.param("exits_before_start", {c.METRIC_EXITS_BEFORE_START}, {c.METRIC_ATTEMPTS},
                     id="exits before start are counted over playback attempts"),
        pytest.param("rebuffering", {c.METRIC_REBUFFER_SECONDS}, {c.METRIC_REBUFFER_SECONDS, c.METRIC_PLAYED_SECONDS},
                     id="rebuffering is stall seconds over stall plus played seconds"),
    ],
)
def test_each_sli_kind_reads_its_own_counters(slo_name: str, bad: set[str], total: set[str]) -> None:
    slo = DEFAULT.slo(slo_name)
    assert _counters(promql.sli_bad(slo, promql.rate, "5m", "rum")) == bad
    assert _counters(promql.sli_total(slo.sli, promql.rate, "5m", "rum")) == total
    ratio = promql.sli_error_ratio(slo, "5m", "rum")
    assert ratio.startswith(promql.sli_bad(slo, promql.rate, "5m", "rum") + "\n/\n")
    assert promql.events_in_window(slo.sli, "1h", "rum") == promql.sli_total(slo.sli, promql.increase, "1h", "rum")


def test_a_latency_sli_has_no_ratio_without_a_threshold() -> None:
    with pytest.raises(ValueError, match="latency SLI"):
        promql.sli_ratio(c.SLI_LIVE_LATENCY, "1m", "rum")


def test_a_dashboard_breakdown_sums_by_the_dimension_and_follows_the_region_variable() -> None:
    expr = promql.sli_ratio(c.SLI_REBUFFERING, "5m", "rum", by=(c.LABEL_REGION, "cdn"), region_re="$region")
    assert expr.count("sum by (region, cdn)") == 3
    assert expr.count('region=~"$region"') == 3


def _burn_alerts(slo_name: str) -> dict[str, dict[str, Any]]:
    group = alerting.burn_group(DEFAULT, "docs/runbooks.md")
    return {r["labels"][c.LABEL_TIER]: r for r in group["rules"] if r["labels"][c.LABEL_SLO] == slo_name}


@pytest.mark.parametrize(
    ("slo_name", "tier", "severity", "capped"),
    [
        pytest.param("exits_before_start", "fast", c.SEVERITY_TICKET, True,
                     id="a max_severity ticket SLO's fast tier is a ticket and says why"),
        pytest.param("exits_before_start", "medium", c.SEVERITY_TICKET, True,
                     id="its medium tier is a ticket too"),
        pytest.param("exits_before_start", "slow", c.SEVERITY_TICKET, False,
                     id="its ticket tiers stay tickets with nothing to explain"),
        pytest.param("rebuffering", "fast", c.SEVERITY_PAGE, False,
                     id="an SLO without max_severity pages on the fast tier"),
        pytest.param("ttff-p95", "medium", c.SEVERITY_PAGE, False,
                     id="the latency SLOs keep their tiers' severities"),
    ],
)
def test_max_severity_caps_the_page_tiers(slo_name: str, tier: str, severity: str, capped: bool) -> None:
    rule = _burn_alerts(slo_name)[tier]
    assert rule["labels"][c.LABEL_SEVERITY] == severity
    assert ("severity_capped" in rule["annotations"]) is capped


def test_the_detection_table_names_the_capped_severity() -> None:
    row = next(line for line in detection.markdown_table(DEFAULT).splitlines() if line.startswith("| exits_before_start"))
    assert row.count("(ticket)") == sum(t.severity == c.SEVERITY_PAGE for t in DEFAULT.tiers)


def test_a_trigger_clause_on_rebuffering_reads_the_rebuffer_ratio() -> None:
    trigger = next(t for t in QOE.triggers if any(cond.sli == c.SLI_REBUFFERING for cond in t.conditions))
    rule = alerting.trigger_rule(QOE, trigger, "docs/runbooks.md")
    assert f"(\n{promql.sli_ratio(c.SLI_REBUFFERING, '10s', 'rum')}\n) > 0.05" in rule["expr"]
    assert "rebuffering ratio > 0.05" in rule["annotations"]["description"]
    assert "error ratio > 0.03" in rule["annotations"]["description"]
