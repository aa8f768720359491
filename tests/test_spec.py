"""SLO spec loading and validation: each case changes one field of a good spec."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from slo import conventions as c
from slo.durations import format_duration, parse_duration
from slo.model import Condition, Dimension, Spec
from slo.spec import DEFAULT_SPEC_PATH, SpecError, load_spec, parse_spec
from slo.validation import Severity
from streamslo.cli import main as cli_main

FIXTURES = Path(__file__).parent / "fixtures" / "specs"


def good_spec() -> dict[str, Any]:
    """The default spec as a mutable document; each test case changes one field."""
    return copy.deepcopy(yaml.safe_load(DEFAULT_SPEC_PATH.read_text()))


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set ``a.b[1].c`` in ``doc``; ``value=...`` (Ellipsis) deletes the field."""
    parts = path.replace("[", ".").replace("]", "").split(".")
    node: Any = doc
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    key: Any = int(last) if last.isdigit() else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return doc


def test_the_default_spec_encodes_the_platform_targets() -> None:
    spec, problems = load_spec(DEFAULT_SPEC_PATH)
    assert not [p for p in problems if p.is_error]
    latency = {(s.sli, s.quantile): s.threshold_s for s in spec.slos if s.is_latency}
    for sli in ("ttff", "interaction_rtt"):
        assert latency[(sli, 0.90)] == 0.150
        assert latency[(sli, 0.95)] == 0.200
        assert latency[(sli, 0.99)] == 0.300
    assert spec.slo("errors").budget == 0.01
    assert spec.slo("live_latency-p95").threshold_s == 5.0
    assert (spec.slo("exits_before_start").budget, spec.slo("exits_before_start").max_severity) == (0.02, "ticket")
    assert spec.slo("rebuffering").budget == 0.005
    assert spec.dimension is None
    assert spec.period_s == 30 * 86400
    tiers = {t.name: (t.long_s, t.short_s, t.factor, t.severity) for t in spec.tiers}
    assert tiers == {
        "fast": (3600, 300, 14.4, "page"),
        "medium": (21600, 1800, 6, "page"),
        "slow": (86400, 7200, 3, "ticket"),
        "slowest": (259200, 21600, 1, "ticket"),
    }
    triggers = {t.name: t for t in spec.triggers}
    assert triggers["scale_out"].for_s == 120
    assert {(c.sli, c.quantile, c.above_s) for c in triggers["scale_out"].conditions} == {
        ("ttff", 0.95, 0.2),
        ("interaction_rtt", 0.95, 0.2),
    }
    assert triggers["failover"].for_s == 300
    assert ("errors", None, None, 0.01) in {
        (c.sli, c.quantile, c.above_s, c.above_ratio) for c in triggers["failover"].conditions
    }
    scale_out, failover = triggers["scale_out"], triggers["failover"]
    assert (scale_out.recover_for_s, scale_out.on_no_data, scale_out.severity) == (300, "healthy", "ticket")
    assert (failover.recover_for_s, failover.on_no_data, failover.severity) == (600, "last_known", "page")
    assert [(t.kind, t.workload, t.namespace) for t in scale_out.targets] == [("hpa", "live-edge", "live-{region}")]
    assert [(t.kind, t.fqdn) for t in failover.targets] == [("route53", "{region}.live.example.com")]


def test_hpa_targets_without_region_in_their_names_are_a_warning() -> None:
    doc = _set(good_spec(), "triggers.0.targets.0.namespace", "live")
    problems = parse_spec(doc)[1]
    assert [(p.path, p.severity) for p in problems if "same name and namespace" in p.message] == [
        ("triggers[0].targets[0].namespace", Severity.WARNING)
    ]


def test_trigger_fields_left_out_take_their_documented_defaults() -> None:
    doc = good_spec()
    for key in ("recover_for", "on_no_data", "stale_after", "severity", "alert", "targets"):
        del doc["triggers"][0][key]
    trigger = parse_spec(doc)[0].triggers[0]
    assert (trigger.recover_for_s, trigger.on_no_data, trigger.stale_after_s) == (0.0, "healthy", 60.0)
    assert (trigger.severity, trigger.alert, trigger.targets) == ("ticket", "", ())


def _lateness(spec: Spec) -> Any:
    return spec.allowed_lateness_s


FIELD_DEFAULTS = [
    pytest.param("stream.allowed_lateness", ..., _lateness, 10.0, id="an absent allowed_lateness is the model's 10 s"),
    pytest.param("stream.allowed_lateness", "0s", _lateness, 0.0, id="an explicit 0s allowed_lateness is no lateness at all"),
    pytest.param("stream.allowed_lateness", "30s", _lateness, 30.0, id="an explicit allowed_lateness is kept"),
    pytest.param("stream.pane", ..., lambda s: s.pane_s, 2.0, id="an absent pane is 2 s"),
    pytest.param("stream.quantile_windows", ..., lambda s: s.quantile_windows_s, (60.0, 300.0, 3600.0),
                 id="absent quantile windows are 1m, 5m and 1h"),
    pytest.param("stream", ..., lambda s: (s.pane_s, s.allowed_lateness_s), (2.0, 10.0), id="an absent stream section takes every stream default"),
    pytest.param("evaluate_kind", ..., lambda s: s.evaluate_kind, "rum", id="an absent evaluate_kind is rum"),
    pytest.param("alerting.low_traffic_min_events", ..., lambda s: s.low_traffic_min_events, 0,
                 id="an absent low-traffic guard is off"),
    pytest.param("alerting.low_traffic_min_events", 0, lambda s: s.low_traffic_min_events, 0,
                 id="an explicit 0 low-traffic guard is off"),
    pytest.param("alerting.tiers[0].name", "fast", lambda s: s.tiers[0].for_s, 0.0,
                 id="a tier without for (the default spec's fast tier) fires at once"),
    pytest.param("alerting.tiers[0].for", "2m", lambda s: s.tiers[0].for_s, 120.0, id="a tier's explicit for is kept"),
    pytest.param("triggers", ..., lambda s: s.triggers, (), id="a spec without triggers has none"),
    pytest.param("triggers[0].window", ..., lambda s: s.triggers[0].window_s, 60.0, id="an absent trigger window is 1m"),
    pytest.param("triggers[0].for", ..., lambda s: s.triggers[0].for_s, 0.0, id="an absent trigger for is 0s"),
    pytest.param("triggers[0].for", "0s", lambda s: s.triggers[0].for_s, 0.0, id="an explicit 0s trigger for is 0s"),
    pytest.param("triggers[0].min_events", ..., lambda s: s.triggers[0].min_events, 0, id="an absent trigger min_events is 0"),
    pytest.param("triggers[0].action", ..., lambda s: s.triggers[0].action, "", id="an absent trigger action is empty"),
    pytest.param("triggers[0].targets[0].namespace", ..., lambda s: s.triggers[0].targets[0].namespace, "default",
                 id="an hpa target without a namespace is in default"),
    pytest.param("triggers[0].targets[0].min_replicas", ..., lambda s: s.triggers[0].targets[0].min_replicas, 2,
                 id="an hpa target without min_replicas keeps 2"),
    pytest.param("triggers[0].targets[0].max_replicas", ..., lambda s: s.triggers[0].targets[0].max_replicas, 20,
                 id="an hpa target without max_replicas allows 20"),
    pytest.param("slos[0].description", ..., lambda s: s.slos[0].description, "", id="an absent SLO description is empty"),
]


@pytest.mark.parametrize(("path", "value", "read", "expected"), FIELD_DEFAULTS)
def test_an_optional_field_left_out_takes_the_models_default(
    path: str, value: Any, read: Callable[[Spec], Any], expected: Any
) -> None:
    spec, problems = parse_spec(_set(good_spec(), path, value))
    assert [p for p in problems if p.is_error] == []
    assert read(spec) == expected


def test_the_docs_field_table_states_the_models_defaults() -> None:
    """docs/spec.md's default column agrees with slo/model.py for the stream and alerting fields."""
    defaults = Spec(name="x", period_s=1.0, regions=(), tiers=(), slos=())
    table = (Path(__file__).parent.parent / "docs" / "spec.md").read_text()
    for field, shown in [
        ("stream.pane", format_duration(defaults.pane_s)),
        ("stream.allowed_lateness", format_duration(defaults.allowed_lateness_s)),
        ("evaluate_kind", defaults.evaluate_kind),
        ("alerting.low_traffic_min_events", str(defaults.low_traffic_min_events)),
        ("stream.quantile_windows", f"[{', '.join(format_duration(w) for w in defaults.quantile_windows_s)}]"),
    ]:
        assert f"| `{field}` | `{shown}` |" in table, field


def test_every_threshold_is_a_histogram_bucket_edge() -> None:
    spec, _ = load_spec()
    assert set(spec.thresholds_s) <= set(spec.histogram_buckets_s)
    assert list(spec.histogram_buckets_s) == sorted(spec.histogram_buckets_s)


def test_a_tier_that_can_never_fire_is_a_warning_and_is_adapted() -> None:
    spec, problems = load_spec()
    warnings = [p for p in problems if p.severity is Severity.WARNING]
    assert {p.path for p in warnings} == {"alerting.tiers[0].factor"}
    assert all("can never fire" in p.message for p in warnings)
    fast = spec.resolved_tiers(spec.slo("ttff-p90"))[0]
    assert fast.adapted and fast.factor == pytest.approx(9.0)
    assert fast.factor * spec.slo("ttff-p90").budget < 1
    assert not spec.resolved_tiers(spec.slo("ttff-p95"))[0].adapted


INVALID = [
    ("apiVersion", "streamslo/v0", "apiVersion", "must be 'streamslo/v1'"),
    ("name", "Live Streaming", "name", "lowercase name"),
    ("period", "thirty days", "period", "not a duration"),
    ("period", ..., "period", "is required"),
    ("regions", [], "regions", "at least one region"),
    ("regions.1", "other", "regions[1]", "not 'other'"),
    ("regions.1", "us-east-1", "regions", "unique"),
    ("evaluate_kind", "bots", "evaluate_kind", "must be one of rum, probe"),
    ("stream.pane", "-1s", "stream.pane", "not a duration"),
    ("stream.quantile_windows.0", "soon", "stream.quantile_windows[0]", "duration"),
    ("alerting.low_traffic_min_events", -5, "alerting.low_traffic_min_events", "non-negative integer"),
    ("alerting.tiers.1.factor", 0, "alerting.tiers[1].factor", "must be > 0"),
    ("alerting.tiers.1.factor", True, "alerting.tiers[1].factor", "must be a number"),
    ("alerting.tiers.1.severity", "sms", "alerting.tiers[1].severity", "'page' or 'ticket'"),
    ("alerting.tiers.1.short", "7h", "alerting.tiers[1].short", "shorter than long"),
    ("alerting.tiers.3.long", "31d", "alerting.tiers[3].long", "exceed the period"),
    ("alerting.tiers.2.name", "medium", "alerting.tiers[2].name", "duplicate tier"),
    ("slos.1.objectives.0.threshold_ms", 0, "slos[1].objectives[0].threshold_ms", "must be > 0"),
    ("slos.1.objectives.0.threshold_ms", "fast", "slos[1].objectives[0].threshold_ms", "must be a number"),
    ("slos.0.objectives.2.quantile", 1.5, "slos[0].objectives[2].quantile", "between 0 and 1"),
    ("slos.0.sli", "bitrate", "slos[0].sli", "must be one of"),
    ("slos.2.objectives.0.max_ratio", 2, "slos[2].objectives[0].max_ratio", "between 0 and 1"),
    ("slos.0.objectives.0.treshold_ms", 150, "slos[0].objectives[0].treshold_ms", "unknown field"),
    ("slos.1.sli", "ttff", "slos[3]", "duplicate SLO name 'ttff-p90'"),
    ("triggers.0.for", "two minutes", "triggers[0].for", "not a duration"),
    ("triggers.0.window", "2m", "triggers[0].window", "not one of stream.quantile_windows"),
    ("triggers.1.any.2.above_ratio", 0, "triggers[1].any[2].above_ratio", "must be > 0"),
    ("stream.quantile_windows.0", "1s", "stream.quantile_windows[0]", "shorter than the pane"),
    ("triggers.0.recover_for", "soon", "triggers[0].recover_for", "not a duration"),
    ("triggers.0.on_no_data", "maybe", "triggers[0].on_no_data", "healthy, unhealthy, last_known"),
    ("triggers.0.stale_after", "0s", "triggers[0].stale_after", "must be > 0"),
    ("triggers.0.stale_after", "1s", "triggers[0].stale_after", "shorter than the pane"),
    ("triggers.0.severity", "sms", "triggers[0].severity", "'page' or 'ticket'"),
    ("triggers.0.alert", "scale-out!", "triggers[0].alert", "Prometheus alert name"),
    ("triggers.0.runbook", "#Scale Out", "triggers[0].runbook", "runbook anchor"),
    ("triggers.1.name", "scale_out", "triggers[1].name", "duplicate trigger"),
    ("triggers.0.targets.0.kind", "lambda", "triggers[0].targets[0].kind", "must be one of hpa, route53"),
    ("triggers.0.targets.0.workload", ..., "triggers[0].targets[0].workload", "required for kind hpa"),
    ("triggers.0.targets.0.workload", "Live_Edge", "triggers[0].targets[0].workload", "Kubernetes name"),
    ("triggers.0.targets.0.namespace", "live {region}", "triggers[0].targets[0].namespace", "Kubernetes name"),
    ("triggers.0.targets.0.min_replicas", 0, "triggers[0].targets[0].min_replicas", "integer >= 1"),
    ("triggers.0.targets.0.max_replicas", 2, "triggers[0].targets[0].max_replicas", ">= min_replicas"),
    ("triggers.0.targets.0.replicas", 2, "triggers[0].targets[0].replicas", "unknown field"),
    ("triggers.1.targets.0.fqdn", ..., "triggers[1].targets[0].fqdn", "required for kind route53"),
    ("triggers.1.targets.0.fqdn", "https://x", "triggers[1].targets[0].fqdn", "host name"),
]


@pytest.mark.parametrize(
    ("field", "value", "path", "message"),
    INVALID,
    ids=[f"{f} set to {v!r} is reported at {p}" for f, v, p, _ in INVALID],
)
def test_an_invalid_field_is_reported_with_its_path(field: str, value: Any, path: str, message: str) -> None:
    doc = _set(good_spec(), field, value)
    with pytest.raises(SpecError) as excinfo:
        parse_spec(doc)
    problems = [str(p) for p in excinfo.value.problems]
    assert any(p.startswith(f"error: {path}: ") and message in p for p in problems), problems


QOE_SLOS = [
    {"sli": "live_latency", "objectives": [{"quantile": 0.95, "threshold_ms": 5000}]},
    {"sli": "exits_before_start", "objectives": [{"max_ratio": 0.02, "max_severity": "ticket"}]},
    {"sli": "rebuffering", "objectives": [{"max_ratio": 0.005}]},
]
QOE_DIMENSION = {"name": "cdn", "values": ["akamai", "fastly", "cloudfront"], "slis": ["ttff", "rebuffering"]}


def qoe_spec() -> dict[str, Any]:
    """The default spec's first three SLOs, the three issue-16 SLOs (slos[3..5]) and a dimension."""
    doc = good_spec()
    doc["slos"] = doc["slos"][:3] + copy.deepcopy(QOE_SLOS)
    doc["dimension"] = copy.deepcopy(QOE_DIMENSION)
    doc["triggers"][1]["any"].append({"sli": "rebuffering", "above_ratio": 0.02})
    return doc


QOE_READS = [
    pytest.param(lambda s: s.slo("live_latency-p95").threshold_s, 5.0, id="a live_latency objective is a latency SLO named by its quantile"),
    pytest.param(lambda s: s.slo("live_latency-p95").kind, "latency", id="live_latency is of kind latency"),
    pytest.param(lambda s: (s.slo("rebuffering").kind, s.slo("rebuffering").budget), ("time_ratio", 0.005),
                 id="a rebuffering objective is a time ratio SLO named after its SLI"),
    pytest.param(lambda s: (s.slo("exits_before_start").kind, s.slo("exits_before_start").budget), ("ratio", 0.02),
                 id="an exits_before_start objective is a ratio SLO named after its SLI"),
    pytest.param(lambda s: s.slo("exits_before_start").max_severity, "ticket", id="max_severity ticket is kept"),
    pytest.param(lambda s: s.slo("exits_before_start").severity_of(s.tiers[0]), "ticket",
                 id="max_severity ticket turns a page tier into a ticket"),
    pytest.param(lambda s: s.slo("rebuffering").max_severity, "", id="an absent max_severity is no cap"),
    pytest.param(lambda s: s.slo("rebuffering").severity_of(s.tiers[0]), "page", id="without a cap a page tier pages"),
    pytest.param(lambda s: s.dimension, Dimension("cdn", ("akamai", "fastly", "cloudfront"), ("ttff", "rebuffering")),
                 id="the dimension block is read in spec order"),
    pytest.param(lambda s: (s.splits("ttff"), s.splits("errors")), (True, False), id="only the listed SLIs split by the dimension"),
    pytest.param(lambda s: s.dimension.map("fastly") + "/" + s.dimension.map("edgio"), "fastly/other",
                 id="a value outside the allow-list maps to other"),
    pytest.param(lambda s: s.triggers[1].conditions[-1], Condition(sli="rebuffering", above_ratio=0.02),
                 id="a trigger may hold above_ratio on a time ratio SLI"),
]


@pytest.mark.parametrize(("read", "expected"), QOE_READS)
def test_the_qoe_slis_and_the_dimension_are_read_into_the_model(read: Callable[[Spec], Any], expected: Any) -> None:
    spec, _ = parse_spec(qoe_spec())
    assert read(spec) == expected


def test_a_spec_without_dimension_splits_nothing() -> None:
    spec, _ = load_spec()
    assert spec.dimension is None and not any(spec.splits(sli) for sli in c.SLIS)


def test_max_severity_page_is_the_same_as_no_cap() -> None:
    doc = _set(qoe_spec(), "slos.5.objectives.0.max_severity", "page")
    spec, _ = parse_spec(doc)
    assert spec.slo("rebuffering").max_severity == ""


QOE_INVALID = [
    pytest.param("slos.5.objectives.0", {"quantile": 0.95, "threshold_ms": 100}, "slos[5].objectives[0].max_ratio",
                 "is required", id="a time ratio objective needs max_ratio"),
    pytest.param("slos.5.objectives.0.quantile", 0.95, "slos[5].objectives[0].quantile", "unknown field",
                 id="a time ratio objective has no quantile"),
    pytest.param("slos.3.objectives.0.max_ratio", 0.1, "slos[3].objectives[0].max_ratio", "unknown field",
                 id="a live_latency objective has no max_ratio"),
    pytest.param("slos.4.objectives.0.max_severity", "sms", "slos[4].objectives[0].max_severity", "'page' or 'ticket'",
                 id="max_severity must be page or ticket"),
    pytest.param("triggers.1.any.3", {"sli": "rebuffering", "above_ms": 10}, "triggers[1].any[3].above_ratio",
                 "is required", id="a condition on a time ratio SLI needs above_ratio"),
    pytest.param("dimension", "cdn", "dimension", "must be a mapping", id="dimension must be a mapping"),
    pytest.param("dimension.name", ..., "dimension.name", "is required", id="dimension.name is required"),
    pytest.param("dimension.name", "region", "dimension.name", "already uses", id="dimension.name cannot be region"),
    pytest.param("dimension.name", "le", "dimension.name", "already uses", id="dimension.name cannot be le"),
    pytest.param("dimension.name", "cdn-name", "dimension.name", "Prometheus label name",
                 id="dimension.name must be a label name"),
    pytest.param("dimension.name", "__cdn", "dimension.name", "not starting with __",
                 id="dimension.name cannot be a reserved double-underscore name"),
    pytest.param("dimension.values", ..., "dimension.values", "is required", id="dimension.values is required"),
    pytest.param("dimension.values", "akamai", "dimension.values", "must be a list", id="dimension.values must be a list"),
    pytest.param("dimension.values", [], "dimension.values", "1..16 values", id="dimension.values cannot be empty"),
    pytest.param("dimension.values", [f"cdn{i}" for i in range(17)], "dimension.values", "1..16 values",
                 id="dimension.values holds at most 16 values"),
    pytest.param("dimension.values.1", "other", "dimension.values[1]", "catch-all", id="other is not a dimension value"),
    pytest.param("dimension.values.1", "x" * 65, "dimension.values[1]", "1..64 characters",
                 id="a dimension value is at most 64 characters"),
    pytest.param("dimension.values.1", 7, "dimension.values[1]", "printable string", id="a dimension value is a string"),
    pytest.param("dimension.values.1", "akamai", "dimension.values[1]", "duplicate 'akamai'",
                 id="dimension values are distinct"),
    pytest.param("dimension.slis", ..., "dimension.slis", "is required", id="dimension.slis is required"),
    pytest.param("dimension.slis", [], "dimension.slis", "at least one SLI", id="dimension.slis cannot be empty"),
    pytest.param("dimension.slis.1", "bitrate", "dimension.slis[1]", "must be one of", id="dimension.slis names known SLIs"),
    pytest.param("dimension.slis", ["ttff", "exits_before_start"], "dimension.slis", "share the attempts",
                 id="exits_before_start cannot split without errors"),
    pytest.param("dimension.slis", ["errors"], "dimension.slis", "list both or neither",
                 id="errors cannot split without exits_before_start"),
    pytest.param("dimension.label", "cdn", "dimension.label", "unknown field", id="dimension has no other fields"),
]


@pytest.mark.parametrize(("field", "value", "path", "message"), QOE_INVALID)
def test_an_invalid_qoe_field_is_reported_with_its_path(field: str, value: Any, path: str, message: str) -> None:
    doc = _set(qoe_spec(), field, value)
    with pytest.raises(SpecError) as excinfo:
        parse_spec(doc)
    problems = [str(p) for p in excinfo.value.problems]
    assert any(p.startswith(f"error: {path}: ") and message in p for p in problems), problems


def test_every_problem_is_reported_not_just_the_first() -> None:
    doc = _set(good_spec(), "period", "forever")
    _set(doc, "slos.0.objectives.1.threshold_ms", -1)
    _set(doc, "alerting.tiers.0.severity", "email")
    with pytest.raises(SpecError) as excinfo:
        parse_spec(doc)
    paths = {p.path for p in excinfo.value.problems}
    assert {"period", "slos[0].objectives[1].threshold_ms", "alerting.tiers[0].severity"} <= paths


def test_a_document_that_is_not_a_mapping_is_an_error() -> None:
    with pytest.raises(SpecError, match="<root>: must be a mapping"):
        parse_spec(["not", "a", "spec"])


FILES = [
    (FIXTURES / "good-minimal.yaml", 0, "ok"),
    (FIXTURES / "good-short-windows.yaml", 0, "ok"),
    (FIXTURES / "bad-thresholds.yaml", 1, "slos[0].objectives[0].threshold_ms: must be > 0"),
    (Path(__file__).parent / "specs" / "qoe.yaml", 0, "ok (5 SLOs"),
]


@pytest.mark.parametrize(
    ("path", "code", "expected"),
    FILES,
    ids=[f"validate {p.name} exits {c}" for p, c, _ in FILES],
)
def test_validate_command_exit_code_and_output(
    path: Path, code: int, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["validate", "--spec", str(path)]) == code
    out = capsys.readouterr()
    assert expected in out.out + out.err


DURATIONS = [("30s", 30), ("5m", 300), ("1h30m", 5400), ("30d", 2592000), ("250ms", 0.25), ("1w", 604800)]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS, ids=[f"{t} is {s} seconds" for t, s in DURATIONS])
def test_durations_parse_and_format_round_trip(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "5", "m5", "5 m", "-5m", "5y"], ids=lambda t: f"{t!r} is not a duration")
def test_malformed_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)
