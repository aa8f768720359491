"""deploy/kubernetes (kustomize) renders, and every object validates against the Kubernetes schemas."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from slo.spec import DEFAULT_SPEC_PATH, parse_spec
from streamslo.testing.prometheus import PROMTOOL
from tests.fixtures_prometheus import require
from tests.test_kubernetes_manifests import K8S_VERSION

ROOT = Path(__file__).resolve().parent.parent
KUSTOMIZE_DIR = ROOT / "deploy" / "kubernetes"


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    run = subprocess.run([kubectl, "kustomize", str(KUSTOMIZE_DIR)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return [d for d in yaml.safe_load_all(run.stdout) if d]


def _get(objects: list[dict[str, Any]], kind: str, name_prefix: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"].startswith(name_prefix))


def test_every_rendered_object_validates(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        ["ConfigMap", "ConfigMap", "Deployment", "Deployment", "HorizontalPodAutoscaler", "Namespace",
         "Secret", "Service", "Service", "Service", "Service"]
    )


PROBES = [
    pytest.param("streamslo-collector", id="the collector is ready on /readyz and alive on /healthz"),
    pytest.param("streamslo-worker", id="the worker is ready on /readyz and alive on /healthz"),
]


@pytest.mark.parametrize("name", PROBES)
def test_probes(objects: list[dict[str, Any]], name: str) -> None:
    container = _get(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]["cpu"]


def test_the_worker_is_restarted_when_it_exits(objects: list[dict[str, Any]]) -> None:
    assert _get(objects, "Deployment", "streamslo-worker")["spec"]["template"]["spec"]["restartPolicy"] == "Always"


def test_the_collector_scales_on_cpu_and_reads_keys_from_the_secret(objects: list[dict[str, Any]]) -> None:
    hpa = _get(objects, "HorizontalPodAutoscaler", "streamslo-collector")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    pod = _get(objects, "Deployment", "streamslo-collector")["spec"]["template"]["spec"]
    secret = _get(objects, "Secret", "streamslo-ingest-keys")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["keys"]["secret"]["secretName"] == secret["metadata"]["name"]  # the hashed, generated name
    assert "--keys=/etc/streamslo/keys/ingest-keys" in pod["containers"][0]["args"]


def test_the_spec_config_map_is_the_default_spec(objects: list[dict[str, Any]], update_golden: bool) -> None:
    if update_golden:
        shutil.copyfile(DEFAULT_SPEC_PATH, KUSTOMIZE_DIR / "spec.yaml")
        pytest.skip("deploy/kubernetes/spec.yaml rewritten; rerun")
    text = _get(objects, "ConfigMap", "streamslo-spec")["data"]["spec.yaml"]
    assert text == DEFAULT_SPEC_PATH.read_text(), "deploy/kubernetes/spec.yaml drifted from slo/specs/default.yaml"
    parse_spec(yaml.safe_load(text))


def test_the_scrape_config_is_a_valid_prometheus_config(objects: list[dict[str, Any]], tmp_path: Path) -> None:
    promtool = require(PROMTOOL, "promtool")
    scrape = yaml.safe_load(_get(objects, "ConfigMap", "streamslo-prometheus-scrape")["data"]["scrape-configs.yaml"])
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({"scrape_configs": scrape}))
    run = subprocess.run([promtool, "check", "config", "prometheus.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
