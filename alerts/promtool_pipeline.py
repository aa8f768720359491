"""Generated promtool tests for the pipeline-health alerts (``rules.pipeline.test.yml``).

Use :func:`pipeline_tests` for the test groups: no data (a region that stops
and regions that never report fire, one that reports does not), ingest
refusals at 2x and 0.5x the limit, consumer lag growing and flat.

>>> from slo.spec import load_spec
>>> spec, _ = load_spec()
>>> len(pipeline_tests(spec, "docs/runbooks.md"))
5
"""

from __future__ import annotations

from typing import Any

from alerts import alerting
from alerts import promtool_series as ps
from slo import conventions as c
from slo.durations import parse_duration
from slo.model import Spec

__all__ = ["PIPELINE_STEP", "lag_test", "no_data_test", "pipeline_tests", "refusals_test"]

PIPELINE_STEP = 60  # seconds; the pipeline alerts hold for 5-15 minutes


def _pipeline_alerts(spec: Spec, runbook_base: str) -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in alerting.pipeline_group(spec, runbook_base)["rules"]}


def _minutes(text: str) -> int:
    return int(parse_duration(text) // 60)


def no_data_test(spec: Spec, runbook_base: str) -> ps.TestGroup:
    """Region ``stopped`` stops reporting and every configured region never reports: all fire."""
    rule = _pipeline_alerts(spec, runbook_base)[c.ALERT_NO_DATA]
    window, held = _minutes(alerting.PIPELINE.no_data_window), _minutes(alerting.PIPELINE.no_data_for)
    stop = window + 2
    fire = stop + window + held + 2
    labels = {c.LABEL_KIND: spec.evaluate_kind, c.LABEL_SLI: spec.latency_slis[0]}
    series = [
        ps.series(c.METRIC_LATENCY_COUNT, labels | {c.LABEL_REGION: "stopped"}, ps.ramp([(100, stop), (0, fire - stop)])),
        ps.series(c.METRIC_LATENCY_COUNT, labels | {c.LABEL_REGION: "flowing"}, ps.ramp([(100, fire)])),
    ]
    never = [ps.expected(rule, {c.LABEL_REGION: r}) for r in spec.regions]
    firing = sorted([*never, ps.expected(rule, {c.LABEL_REGION: "stopped"})], key=lambda e: e["exp_labels"][c.LABEL_REGION])
    return {
        "name": f"{c.ALERT_NO_DATA}: a region that stops or never reports fires; one that reports does not",
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": f"{stop + held}m", "alertname": rule["alert"], "exp_alerts": sorted(never, key=lambda e: e["exp_labels"][c.LABEL_REGION])},
            {"eval_time": f"{fire}m", "alertname": rule["alert"], "exp_alerts": firing},
        ],
    }


def refusals_test(spec: Spec, runbook_base: str, ratio_factor: float) -> ps.TestGroup:
    """Refusals at ``ratio_factor`` x the alert ratio: fire after ``for:`` when above 1."""
    rule = _pipeline_alerts(spec, runbook_base)[c.ALERT_INGEST_REFUSALS]
    held = _minutes(alerting.PIPELINE.refusal_for)
    total = held + 10
    refused = 1000 * alerting.PIPELINE.refusal_ratio * ratio_factor
    series = [
        ps.series(c.METRIC_COLLECTOR_BEACONS, {c.LABEL_OUTCOME: c.OUTCOME_ACCEPTED}, ps.ramp([(1000 - refused, total)])),
        ps.series(c.METRIC_COLLECTOR_BEACONS, {c.LABEL_OUTCOME: c.OUTCOME_REFUSED}, ps.ramp([(refused, total)])),
        ps.series(c.METRIC_COLLECTOR_REFUSED, {c.LABEL_REASON: "invalid"}, ps.ramp([(refused, total)])),
    ]
    fires = ratio_factor > 1
    return {
        "name": f"{c.ALERT_INGEST_REFUSALS}: {ratio_factor:g}x the refusal ratio {'fires' if fires else 'stays silent'}",
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": f"{held // 2}m", "alertname": rule["alert"], "exp_alerts": []},
            {"eval_time": f"{total - 1}m", "alertname": rule["alert"], "exp_alerts": [ps.expected(rule, {})] if fires else []},
        ],
    }


def lag_test(spec: Spec, runbook_base: str, growing: bool) -> ps.TestGroup:
    """Lag above the floor: fires when it keeps growing, silent when it is flat."""
    rule = _pipeline_alerts(spec, runbook_base)[c.ALERT_CONSUMER_LAG]
    held, window = _minutes(alerting.PIPELINE.lag_for), _minutes(alerting.PIPELINE.lag_window)
    total = window + held + 5
    floor = 2 * alerting.PIPELINE.lag_min_records
    values = f"{floor}+{100 if growing else 0}x{total}"
    series = [ps.series(c.METRIC_STREAM_LAG, {c.LABEL_PARTITION: "0"}, values)]
    return {
        "name": f"{c.ALERT_CONSUMER_LAG}: lag above {floor} records {'growing fires' if growing else 'but flat stays silent'}",
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": f"{total - 1}m", "alertname": rule["alert"], "exp_alerts": [ps.expected(rule, {})] if growing else []},
        ],
    }


def pipeline_tests(spec: Spec, runbook_base: str) -> list[ps.TestGroup]:
    return [
        no_data_test(spec, runbook_base),
        refusals_test(spec, runbook_base, 2.0),
        refusals_test(spec, runbook_base, 0.5),
        lag_test(spec, runbook_base, True),
        lag_test(spec, runbook_base, False),
    ]
