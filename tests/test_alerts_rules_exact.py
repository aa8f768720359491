"""promtool proofs for the generated rules: exact alert labels, both ``le`` spellings, counted long windows.

- every alert of ``rules.yml`` is expected by a generated promtool test with
  exactly the label names of ``alerting.alert_label_names`` (promtool compares
  label sets exactly; ``tests/test_alerts_promtool.py`` runs those tests);
- a bucket written ``le="1"``, ``le="1.0"`` or ``le="0.20"`` counts as the threshold;
- a 1d window summed from hourly counts equals the raw 1d window on the hour,
  and the raw window of the last full hour in between (the documented edge),
  for a latency, a ratio and a time-ratio (rebuffering) SLO;
- every SLO's shortest error-ratio record is exact: the generated
  ``rules.records.test.yml`` (run by ``tests/test_alerts_promtool.py``).
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts import alerting, recording
from alerts import promtool_series as ps
from alerts.yamlout import dump
from slo import conventions as c
from slo import promql
from slo.model import SLO
from slo.spec import load_spec
from streamslo.generate import generate
from streamslo.testing.prometheus import PROMTOOL
from tests.fixtures_prometheus import require

ROOT = Path(__file__).resolve().parents[1]
DEFAULT, _ = load_spec(ROOT / "slo/specs/default.yaml")


def _promtool(tmp: Path, groups: list[dict[str, Any]], test: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    (tmp / "rules.yml").write_text(dump({"groups": groups}, "# test"))
    (tmp / "t.test.yml").write_text(dump({"rule_files": ["rules.yml"], **test}, "# test"))
    return subprocess.run([require(PROMTOOL, "promtool"), "test", "rules", "t.test.yml"], cwd=tmp,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("spec_path", ["slo/specs/default.yaml", "tests/specs/short.yaml", "tests/specs/qoe.yaml"],
                         ids=["every default-spec alert is expected with its documented labels",
                              "every short-spec alert is expected with its documented labels",
                              "every QoE-spec alert is expected with its documented labels"])
def test_every_alert_is_tested_with_exactly_its_documented_labels(spec_path: str) -> None:
    spec, _ = load_spec(ROOT / spec_path)
    files = generate(spec, spec_path)
    documented = alerting.alert_label_names(spec)
    rules = yaml.safe_load(files["prometheus/rules.yml"])
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert alerts == set(documented)
    seen: dict[str, set[frozenset[str]]] = {}
    for name, text in files.items():
        if name.endswith(".test.yml"):
            for test in yaml.safe_load(text)["tests"]:
                for case in test.get("alert_rule_test", []):
                    for exp in case["exp_alerts"]:
                        seen.setdefault(case["alertname"], set()).add(frozenset(exp["exp_labels"]) | {"alertname"})
    assert set(seen) == alerts, f"alerts no promtool test sees firing: {alerts - set(seen)}"
    assert all(seen[a] == {documented[a]} for a in alerts), {a: seen[a] for a in alerts if seen[a] != {documented[a]}}


@pytest.mark.prometheus
def test_a_bucket_counts_whatever_the_exporter_writes_for_its_edge(tmp_path: Path) -> None:
    slos = [SLO("ttff-p95", "ttff", 0.05, quantile=0.95, threshold_s=1.0),
            SLO("ttff-p99", "ttff", 0.01, quantile=0.99, threshold_s=0.2)]
    spec = replace(DEFAULT, slos=tuple(slos))
    series = []
    spellings = {"one": ("1", "0.2"), "one-dot-zero": ("1.0", "0.20"), "padded": ("1.000", "0.2")}
    for region, (whole, fraction) in spellings.items():
        labels = {c.LABEL_REGION: region, c.LABEL_KIND: "rum", c.LABEL_SLI: "ttff"}
        series.append(ps.series(c.METRIC_LATENCY_COUNT, labels, "0+100x20"))
        series.append(ps.series(c.METRIC_LATENCY_BUCKET, labels | {c.LABEL_LE: whole}, "0+90x20"))
        series.append(ps.series(c.METRIC_LATENCY_BUCKET, labels | {c.LABEL_LE: fraction}, "0+60x20"))
    record = c.sli_error_record("5m")
    checks = [
        {"expr": f"round(1000 * {promql.selector(record, slo=slo.name)})", "eval_time": "10m",
         "exp_samples": [{"labels": promql.selector("", region=r, sli="ttff", slo=slo.name, window="5m"),
                          "value": value} for r in sorted(spellings)]}
        for slo, value in ((slos[0], 100), (slos[1], 400))
    ]
    test = {"evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}]}
    result = _promtool(tmp_path, [recording.sli_group(spec)], test)
    assert result.returncode == 0, result.stdout + result.stderr


def _raw_1d(spec: Any) -> dict[str, Any]:
    """The 1d error ratio from raw samples, as the rules were before counted windows."""
    rules = [r for r in recording.sli_group(spec, raw_long_windows=True)["rules"]
             if r["record"] == c.sli_error_record("1d")]
    return {"name": "raw", "rules": [r | {"record": "raw:sli_error:ratio_rate1d"} for r in rules]}


@pytest.mark.prometheus
def test_a_counted_1d_window_equals_the_raw_one_on_the_hour_and_lags_by_at_most_an_hour(tmp_path: Path) -> None:
    slos = (DEFAULT.slo("errors"), DEFAULT.slo("ttff-p95"), DEFAULT.slo("rebuffering"))
    spec = replace(DEFAULT, slos=slos)
    base = {c.LABEL_REGION: "eu-west-1", c.LABEL_KIND: "rum"}
    lat = base | {c.LABEL_SLI: "ttff"}
    # Traffic and error ratio change every few hours, so no two hours look alike.
    segments: list[tuple[float, int]] = [(60, 300), (140, 500), (90, 400), (200, 600)]
    bad: list[tuple[float, int]] = [(3, 300), (1, 500), (9, 400), (2, 600)]
    good = ps.ramp([(n - b, k) for (n, k), (b, _) in zip(segments, bad, strict=True)])
    series = [
        ps.series(c.METRIC_ATTEMPTS, base, ps.ramp(segments)),
        ps.series(c.METRIC_ERRORS, base, ps.ramp(bad)),
        ps.series(c.METRIC_LATENCY_COUNT, lat, ps.ramp(segments)),
        ps.series(c.METRIC_LATENCY_BUCKET, lat | {c.LABEL_LE: "0.2"}, good),
        # Rebuffering: the bad events are stall seconds, the good ones played seconds.
        ps.series(c.METRIC_REBUFFER_SECONDS, base, ps.ramp(bad)),
        ps.series(c.METRIC_PLAYED_SECONDS, base, good),
    ]
    counted = c.sli_error_record("1d")
    on_hour = f"abs({counted} - raw:sli_error:ratio_rate1d) > 1e-9"
    lagged = f"abs({counted} - raw:sli_error:ratio_rate1d offset 30m) > 1e-9"
    checks: list[dict[str, Any]] = []
    for hour in (25, 28, 30):
        checks.append({"expr": on_hour, "eval_time": f"{hour}h", "exp_samples": []})
        checks.append({"expr": lagged, "eval_time": f"{hour}h30m", "exp_samples": []})
        checks.append({"expr": f"count({counted}) + count(raw:sli_error:ratio_rate1d)", "eval_time": f"{hour}h30m",
                       "exp_samples": [{"labels": "{}", "value": 2 * len(slos)}]})
    # Control: half an hour off the hour the counted window differs from the raw one of now.
    checks.append({"expr": f"count({on_hour})", "eval_time": "30h30m", "exp_samples": [{"labels": "{}", "value": len(slos)}]})
    groups: list[dict[str, Any]] = [recording.counts_group(spec), recording.long_window_group(spec), _raw_1d(spec)]
    test = {"evaluation_interval": "1m", "group_eval_order": [g["name"] for g in groups],
            "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}]}
    result = _promtool(tmp_path, groups, test)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
