"""docker-compose.yml is valid and wired to files that exist, checked without a Docker engine.

``docker-compose config`` (Debian's docker-compose 1.29) validates the file
against the compose schema; the rest follows every bind mount back to the
repository and checks the mounted configs with the real tools (promtool,
amtool) where they exist.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamslo.cli import COMMANDS
from tests.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"
GENERATED = ROOT / "deploy" / "generated"
needs_compose = pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed (scripts/install-deps.sh)")


def compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker-compose", "-f", str(path), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=path.parent,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(path.parent)},
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose not installed (scripts/install-deps.sh)")
    result = compose_config(COMPOSE)
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = yaml.safe_load(result.stdout)
    return doc


def bind_mounts(resolved: dict[str, Any], service: str) -> dict[str, Path]:
    """Container path -> host path for every bind mount of ``service``."""
    mounts = {}
    for volume in resolved["services"][service].get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts[volume["target"]] = Path(volume["source"])
        else:
            source, target = volume.split(":")[:2]
            if source.startswith(("/", ".")):
                mounts[target] = Path(source)
    return mounts


def host_path(mounts: dict[str, Path], container_path: str) -> Path | None:
    """Map a path inside a container to the host through its bind mounts."""
    for target, source in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
        if container_path == target:
            return source
        if container_path.startswith(target.rstrip("/") + "/"):
            return source / container_path[len(target.rstrip("/")) + 1 :]
    return None


BROKEN = [
    ("services:\n  a:\n    image: x\n    ports: 5\n", "ports must be a list"),
    ("services:\n  a:\n    image: x\n    depends_on: [b]\n", "depends on an undefined service"),
    ("services:\n  a:\n    imagee: x\n", "unknown service key"),
]


@needs_compose
@pytest.mark.parametrize(("text", "why"), BROKEN, ids=[b[1] for b in BROKEN])
def test_compose_config_rejects_a_broken_file(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "docker-compose.yml"
    path.write_text('version: "3.9"\n' + text)
    assert compose_config(path).returncode != 0, why


def test_the_stack_has_every_component_of_the_design(resolved: dict[str, Any]) -> None:
    assert {"kafka", "collector", "worker", "prometheus", "alertmanager", "grafana", "jaeger"} <= set(resolved["services"])
    # workers scale with --scale: no fixed container name, no host port
    worker = resolved["services"]["worker"]
    assert "container_name" not in worker and not worker.get("ports")


def test_every_bind_mount_exists_in_the_repository(resolved: dict[str, Any]) -> None:
    missing = [
        f"{service}: {source}"
        for service in resolved["services"]
        for source in bind_mounts(resolved, service).values()
        if not source.exists()
    ]
    assert not missing, f"missing: {missing}; run `{generate_command()}`"


def test_streamslo_services_run_real_subcommands(resolved: dict[str, Any]) -> None:
    for service in ("collector", "worker"):
        command = resolved["services"][service]["command"]
        assert command[0] in COMMANDS, f"{service}: streamslo has no subcommand {command[0]!r}"


def test_streamslo_services_are_restarted_when_they_exit_non_zero(resolved: dict[str, Any]) -> None:
    # A worker that must die exits non-zero (slo/stream/exits.py); a supervisor that
    # restarts only on failure ("on-failure") or always ("unless-stopped") brings it back.
    for service in ("collector", "worker"):
        policy = resolved["services"][service].get("restart", "no")
        assert policy in ("on-failure", "unless-stopped", "always"), f"{service}: restart: {policy}"


@pytest.mark.prometheus
@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_prometheus_config_and_mounted_rules_pass_promtool(resolved: dict[str, Any], tmp_path: Path) -> None:
    mounts = bind_mounts(resolved, "prometheus")
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    # Point rule_files at the host files that the compose mounts where the
    # patterns look, then let promtool check the whole config, rules included.
    rules = [source for target, source in mounts.items()
             if any(fnmatch.fnmatch(target, pattern) for pattern in config["rule_files"])]
    assert rules, "no rule file is mounted where prometheus.yml's rule_files look"
    config["rule_files"] = [str(r) for r in rules]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool not installed")
def test_alertmanager_config_passes_amtool_and_its_secret_files_are_mounted(resolved: dict[str, Any], tmp_path: Path) -> None:
    mounts = bind_mounts(resolved, "alertmanager")
    source = host_path(mounts, "/etc/alertmanager/alertmanager.yml")
    assert source is not None and source.exists()
    config = yaml.safe_load(source.read_text())
    # Every *_file the config reads must be mounted; check amtool on a copy
    # whose file paths point at the mounted host files.
    def remap(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key.endswith("_file") and isinstance(value, str):
                    mapped = host_path(mounts, value)
                    assert mapped is not None and mapped.exists(), f"{key}: {value} is not mounted"
                    value = str(mapped)
                out[key] = remap(value)
            return out
        if isinstance(node, list):
            return [remap(v) for v in node]
        return node

    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(remap(config)))
    result = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_points_at_the_mounted_dashboards(resolved: dict[str, Any]) -> None:
    mounts = bind_mounts(resolved, "grafana")
    provisioning = host_path(mounts, "/etc/grafana/provisioning")
    assert provisioning is not None and provisioning.is_dir()
    providers = [
        p
        for f in sorted((provisioning / "dashboards").glob("*.y*ml"))
        for p in yaml.safe_load(f.read_text()).get("providers", [])
    ]
    assert providers, "no dashboard provider in the provisioning folder"
    for provider in providers:
        folder = host_path(mounts, provider["options"]["path"])
        assert folder is not None and sorted(folder.glob("*.json")), provider["options"]["path"]
    datasources = sorted((provisioning / "datasources").glob("*.y*ml"))
    urls = [d.get("url", "") for f in datasources for d in yaml.safe_load(f.read_text()).get("datasources", [])]
    assert any("prometheus:9090" in u for u in urls), f"no datasource points at the compose prometheus: {urls}"


def test_the_image_copies_every_package_pyproject_installs() -> None:
    # The image is not built in CI (no engine); at least its inputs must exist
    # and cover every top-level package `pip install .` will look for.
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    sources = [s for line in dockerfile.splitlines() if line.startswith("COPY ") for s in line.split()[1:-1]]
    assert all((ROOT / s).exists() for s in sources), sources
    pyproject = (ROOT / "pyproject.toml").read_text()
    include = re.search(r"include = \[([^\]]*)\]", pyproject)
    assert include is not None
    packages = {p.strip().strip('"').rstrip("*") for p in include.group(1).split(",") if p.strip()}
    assert packages <= set(sources), f"not copied into the image: {packages - set(sources)}"


def generate_command() -> str:
    """The ``streamslo generate`` line docker-compose.yml documents for deploy/generated/."""
    match = re.search(r"^#\s+(streamslo generate .*)$", COMPOSE.read_text(), flags=re.M)
    assert match, "docker-compose.yml does not say how deploy/generated/ is made"
    return match.group(1).strip()


def test_the_committed_generated_configs_match_the_generator(tmp_path: Path, update_golden: bool) -> None:
    argv = shlex.split(generate_command())
    assert argv[argv.index("--out") + 1] == "deploy/generated"
    out = tmp_path / "generated"
    argv[argv.index("--out") + 1] = str(out)
    result = subprocess.run([sys.executable, "-m", "streamslo.cli", *argv[1:]], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    fresh = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    if update_golden:
        shutil.rmtree(GENERATED, ignore_errors=True)
        for rel, data in fresh.items():
            (GENERATED / rel).parent.mkdir(parents=True, exist_ok=True)
            (GENERATED / rel).write_bytes(data)
    committed = {p.relative_to(GENERATED): p.read_bytes() for p in sorted(GENERATED.rglob("*")) if p.is_file()}
    assert sorted(committed) == sorted(fresh)
    drifted = [str(rel) for rel in fresh if committed[rel] != fresh[rel]]
    assert not drifted, f"deploy/generated/ drifted ({drifted}); rerun with --update-golden"
