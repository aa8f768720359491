"""Every generated Kubernetes object validates against its schema; Route 53 configs against the AWS model.

Native kinds go through ``kubernetes-validate`` (the Kubernetes OpenAPI
schemas it ships, strict: unknown fields are errors); KEDA's ScaledObject
through its CRD's ``openAPIV3Schema`` (``deploy/schemas/``), made strict the
same way; ``route53/health-checks.json`` through botocore's Route 53 service
model. Each validator is also shown to reject a broken object.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import botocore.session
import jsonschema
import kubernetes_validate
import pytest
import yaml
from botocore.validate import ParamValidator

from slo.spec import load_spec
from streamslo.generate import generate

ROOT = Path(__file__).resolve().parent.parent
K8S_VERSION = "1.30.0"
KEDA_CRD = ROOT / "deploy" / "schemas" / "keda.sh_scaledobjects.yaml"
SPECS = ["slo/specs/default.yaml", "tests/specs/short.yaml"]


def _strict(schema: Any) -> Any:
    """The schema with ``additionalProperties: false`` wherever properties are listed (as kubectl --validate=strict)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _keda_validator() -> jsonschema.Draft7Validator:
    crd = yaml.safe_load(KEDA_CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    schema = _strict(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}  # ObjectMeta is checked by the API server
    return jsonschema.Draft7Validator(schema)


KEDA = _keda_validator()


def validate_object(doc: dict[str, Any]) -> None:
    """Raise when ``doc`` does not match its kind's schema."""
    if doc.get("kind") == "ScaledObject":
        errors = sorted(KEDA.iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            raise jsonschema.ValidationError(errors[0].message)
        return
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def kubernetes_objects(spec_path: str) -> list[tuple[str, dict[str, Any]]]:
    files = generate(load_spec(spec_path)[0], spec_path)
    return [
        (rel, doc)
        for rel, text in files.items() if rel.startswith("kubernetes/")
        for doc in yaml.safe_load_all(text)
    ]


OBJECTS = [(spec, rel, doc) for spec in SPECS for rel, doc in kubernetes_objects(spec)]


@pytest.mark.parametrize(
    ("spec", "rel", "doc"), OBJECTS,
    ids=[f"{s}: {r} {d['kind']} {d['metadata'].get('namespace', '')} validates" for s, r, d in OBJECTS],
)
def test_generated_kubernetes_objects_validate(spec: str, rel: str, doc: dict[str, Any]) -> None:
    validate_object(doc)


def test_every_kind_is_generated() -> None:
    kinds = {(rel, doc["kind"]) for _, rel, doc in OBJECTS}
    assert kinds == {
        ("kubernetes/prometheus-adapter.yaml", "ConfigMap"),
        ("kubernetes/hpa-live-edge.yaml", "HorizontalPodAutoscaler"),
        ("kubernetes/keda-scaledobject.yaml", "ScaledObject"),
    }


def _first(kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(doc for _, _, doc in OBJECTS if doc["kind"] == kind))


BROKEN = [
    pytest.param("HorizontalPodAutoscaler", ("spec", "minReplicas"), "three", id="an HPA with a string minReplicas is rejected"),
    pytest.param("HorizontalPodAutoscaler", ("spec", "maxReplica"), 3, id="an HPA with an unknown field is rejected"),
    pytest.param("ScaledObject", ("spec", "minReplicaCount"), "three", id="a ScaledObject with a string minReplicaCount is rejected"),
    pytest.param("ScaledObject", ("spec", "pollInterval"), 15, id="a ScaledObject with an unknown field is rejected"),
    pytest.param("ConfigMap", ("data", "config.yaml"), 1, id="a ConfigMap with a non-string value is rejected"),
]


@pytest.mark.parametrize(("kind", "path", "value"), BROKEN)
def test_the_validators_reject_broken_objects(kind: str, path: tuple[str, str], value: Any) -> None:
    doc = _first(kind)
    doc[path[0]][path[1]] = value
    with pytest.raises((kubernetes_validate.ValidationError, jsonschema.ValidationError)):
        validate_object(doc)


def _route53_problems(check: dict[str, Any]) -> list[str]:
    shape = botocore.session.get_session().get_service_model("route53").operation_model("CreateHealthCheck").input_shape
    params = {"CallerReference": check["CallerReference"], "HealthCheckConfig": check["HealthCheckConfig"]}
    report = ParamValidator().validate(params, shape)
    problems = [report.generate_report()] if report.has_errors() else []
    members = shape.members["HealthCheckConfig"].members
    config = check["HealthCheckConfig"]
    if config["Type"] not in members["Type"].enum:
        problems.append(f"Type {config['Type']!r} is not one of {members['Type'].enum}")
    for key in ("FailureThreshold", "RequestInterval", "Port"):
        lo, hi = members[key].metadata.get("min", 0), members[key].metadata.get("max", 1 << 31)
        if not lo <= config[key] <= hi:
            problems.append(f"{key} {config[key]} outside [{lo}, {hi}]")
    for key in ("SearchString", "ResourcePath", "FullyQualifiedDomainName"):
        if len(config[key]) > members[key].metadata.get("max", 1 << 31):
            problems.append(f"{key} too long")
    return problems


@pytest.mark.parametrize("spec_path", SPECS)
def test_route53_health_checks_match_the_aws_model(spec_path: str) -> None:
    spec = load_spec(spec_path)[0]
    checks = json.loads(generate(spec, spec_path)["route53/health-checks.json"])["HealthChecks"]
    assert [c["Region"] for c in checks] == list(spec.regions)
    for check in checks:
        assert _route53_problems(check) == []
        config = check["HealthCheckConfig"]
        assert (config["Type"], config["SearchString"], config["RequestInterval"]) == ("HTTPS_STR_MATCH", "SLO_OK", 10)
        assert config["ResourcePath"] == f"/v1/regions/{check['Region']}/health"
    broken = copy.deepcopy(checks[0])
    broken["HealthCheckConfig"].update(Type="HTTPS_STRING", FailureThreshold=11)
    problems = _route53_problems(broken)
    assert any("Type" in p for p in problems) and any("FailureThreshold" in p for p in problems), problems
