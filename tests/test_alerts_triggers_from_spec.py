"""Trigger alerts take their names, severities, runbooks and inhibitions from the spec.

The default spec's triggers are renamed (other names, alert names and
severities swapped); nothing generated may still name the default ones.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from alerts import alerting, alertmanager
from slo import conventions as c
from slo.model import Spec
from slo.spec import DEFAULT_SPEC_PATH, parse_spec
from streamslo.generate import generate

RUNBOOKS = "docs/runbooks.md"


def _renamed_spec() -> Spec:
    doc: dict[str, Any] = copy.deepcopy(yaml.safe_load(DEFAULT_SPEC_PATH.read_text()))
    scale, failover = doc["triggers"]
    scale.update(name="add_edges", alert="EdgeCapacityLow", severity="page")
    failover.update(name="evacuate", alert="EvacuateRegion", severity="ticket")
    watch = copy.deepcopy(scale) | {"name": "watch", "alert": "JustWatching", "runbook": "watching", "severity": "ticket", "targets": []}
    doc["triggers"].append(watch)
    return parse_spec(doc)[0]


SPEC = _renamed_spec()
RULES = {rule["alert"]: rule for rule in alerting.trigger_group(SPEC, RUNBOOKS)["rules"]}


@pytest.mark.parametrize(
    ("alert", "severity", "anchor"),
    [
        pytest.param("EdgeCapacityLow", "page", "scale-out", id="a renamed HPA trigger pages under its own name and links scale-out"),
        pytest.param("EvacuateRegion", "ticket", "region-failover", id="a renamed Route 53 trigger tickets and links region-failover"),
        pytest.param("JustWatching", "ticket", "watching", id="a trigger with a runbook field links that anchor"),
    ],
)
def test_a_trigger_alert_carries_the_specs_name_severity_and_runbook(alert: str, severity: str, anchor: str) -> None:
    rule = RULES[alert]
    assert rule["labels"][c.LABEL_SEVERITY] == severity
    assert rule["annotations"]["runbook_url"] == f"{RUNBOOKS}#{anchor}"


def test_the_traffic_mover_silences_the_capacity_adder_under_the_new_names() -> None:
    rules = [i.rule() for i in alertmanager.inhibitions(SPEC)]
    assert {
        "source_matchers": ['alertname="EvacuateRegion"'],
        "target_matchers": ['alertname="EdgeCapacityLow"'],
        "equal": [c.LABEL_REGION],
    } in rules
    assert not [r for r in rules if 'alertname="JustWatching"' in r["source_matchers"] + r["target_matchers"]]


def test_no_generated_file_names_the_default_trigger_alerts() -> None:
    for rel, text in generate(SPEC, "renamed.yaml").items():
        for default in (c.ALERT_SCALE_OUT, c.ALERT_FAILOVER):
            assert default not in text, f"{rel} still names {default}"
