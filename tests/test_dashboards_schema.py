"""Generated dashboards: valid against Grafana's dashboard schema, wired to the rules.

The schema is derived from grafana-foundation-sdk 0.0.21's typed models
(``tests/grafana_schema.py`` says why: the package ships no schema file).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from dashboards import overview, pipeline
from dashboards.panels import DATASOURCE_UID
from slo import conventions as c
from slo.spec import load_spec
from streamslo.generate import generate
from tests.grafana_schema import dashboard_schema

ROOT = Path(__file__).resolve().parent.parent
SPECS = ["slo/specs/default.yaml", "tests/specs/short.yaml", "tests/specs/qoe.yaml"]
BOARDS = [overview, pipeline]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = dashboard_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _board(spec_path: str, module: Any) -> dict[str, Any]:
    spec, _ = load_spec(ROOT / spec_path)
    result: dict[str, Any] = module.dashboard(spec, "test")
    return result


@pytest.mark.parametrize("spec_path", SPECS, ids=["default spec", "short spec", "QoE spec with a dimension"])
@pytest.mark.parametrize("module", BOARDS, ids=["the SLO overview validates", "the pipeline dashboard validates"])
def test_dashboard_validates_against_grafana_schema(
    spec_path: str, module: Any, validator: jsonschema.Draft202012Validator
) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(_board(spec_path, module))]
    assert errors == []


def _break_unknown_key(board: dict[str, Any]) -> None:
    board["sharedCrosshair"] = True


def _break_panel_type(board: dict[str, Any]) -> None:
    board["panels"][1]["gridPos"]["w"] = "wide"


def _break_threshold(board: dict[str, Any]) -> None:
    board["panels"][1]["fieldConfig"]["defaults"]["thresholds"]["steps"][0]["op"] = "gt"


@pytest.mark.parametrize(
    "breaker",
    [_break_unknown_key, _break_panel_type, _break_threshold],
    ids=[
        "a legacy top-level field grafanalib used to write is rejected",
        "a grid width that is not a number is rejected",
        "a graph-panel threshold field is rejected",
    ],
)
def test_the_schema_rejects_broken_dashboards(breaker: Any, validator: jsonschema.Draft202012Validator) -> None:
    board = copy.deepcopy(_board(SPECS[0], overview))
    breaker(board)
    assert list(validator.iter_errors(board))


def _exprs(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


@pytest.mark.parametrize("spec_path", SPECS, ids=["default spec", "short spec", "QoE spec with a dimension"])
def test_overview_has_region_variable_and_every_query_follows_it(spec_path: str) -> None:
    board = _board(spec_path, overview)
    assert [v["name"] for v in board["templating"]["list"]] == ["region"]
    for expr in _exprs(board):
        assert 'region=~"$region"' in expr, expr


@pytest.mark.parametrize(
    ("needle", "what"),
    [
        (c.METRIC_LATENCY_QUANTILE, "percentiles against thresholds"),
        (c.burn_rate_record("1h"), "the fast tier's burn rate"),
        (c.burn_rate_record("3d"), "the slowest tier's burn rate"),
        (c.RECORD_BUDGET_REMAINING, "budget remaining"),
        (c.METRIC_LATENCY_COUNT, "event rate"),
    ],
    ids=[
        "the overview shows percentiles",
        "the overview shows the fast tier burn",
        "the overview shows the slowest tier burn",
        "the overview shows budget remaining",
        "the overview shows the event rate",
    ],
)
def test_overview_panels_read_the_generated_names(needle: str, what: str) -> None:
    assert any(needle in e for e in _exprs(_board(SPECS[0], overview))), what


def test_percentile_panels_draw_every_objective_threshold() -> None:
    spec, _ = load_spec(ROOT / SPECS[0])
    board = overview.dashboard(spec, "test")
    for sli in spec.latency_slis:
        panel = next(p for p in board["panels"] if p["title"].startswith(f"{sli} percentiles"))
        steps = [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"][1:]]
        assert steps == sorted(s.threshold_s for s in spec.slos if s.sli == sli and s.threshold_s is not None)
        assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"


def test_provisioned_datasource_is_the_one_panels_use() -> None:
    spec, _ = load_spec(ROOT / SPECS[0])
    files = generate(spec, SPECS[0])
    datasource = yaml.safe_load(files["grafana/provisioning/datasources/streamslo.yml"])
    assert datasource["datasources"][0]["uid"] == DATASOURCE_UID
    for rel, text in files.items():
        if rel.startswith("grafana/dashboards/") and rel.endswith(".json"):
            board = json.loads(text)
            for panel in board["panels"]:
                if panel["type"] != "row":
                    assert panel["datasource"]["uid"] == DATASOURCE_UID, (rel, panel["title"])
