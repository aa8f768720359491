"""The generated HPA on a known p95 series: scale-up starts 2 minutes above 200 ms, not earlier, not at 4.

A 1m-window p95 gauge (one sample per 15 s scrape) is backfilled into a real
Prometheus TSDB; the generated recording rules (``alerts/trigger_signal.py``)
are evaluated over it by ``promtool tsdb create-blocks-from rules`` against
that Prometheus (the held rule reads the ratio record, so it is a second
pass); the generated prometheus-adapter ``metricsQuery`` is then run as the
adapter runs it (``<<.Series>>`` and ``<<.LabelMatchers>>`` filled in) every
15 s, and its values drive :class:`Hpa`, a transcription of the Kubernetes
HPA controller (``pkg/controller/podautoscaler``: replica calculator with
tolerance, stabilization windows, scaling policies) configured by the
generated HPA object's ``spec``.

One region per scenario, all in one TSDB.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from alerts import autoscaler
from alerts.yamlout import dump
from slo import conventions as c
from slo.hpa import Hpa
from slo.spec import load_spec
from streamslo.generate import generate
from streamslo.testing.ports import free_port
from streamslo.testing.prometheus import PROMETHEUS, PROMTOOL, start_server
from tests.fixtures_prometheus import require

SPEC = "slo/specs/default.yaml"
SCRAPE_S = 15  # the p95 gauge's sample interval, the rule evaluation interval and the HPA sync period
ON_S, OFF_S, END_S = 600, 1200, 1800
# region -> p95 (seconds) during the incident [ON_S, ON_S + duration); 0.15 otherwise.
SCENARIOS = {
    "eu-west-1": (0.300, OFF_S - ON_S),   # far above 200 ms for 10 min
    "us-east-1": (0.205, OFF_S - ON_S),   # just above: only scales because the target accounts for the tolerance
    "ap-southeast-1": (0.195, OFF_S - ON_S),  # just below: never scales
    "sa-east-1": (0.300, 100),            # above for 100 s < for: 2m: never scales
}


# --- real Prometheus over the replayed series -------------------------------------


def _openmetrics(start: int) -> str:
    lines = [f"# TYPE {c.METRIC_LATENCY_QUANTILE} gauge", f"# TYPE {c.METRIC_LATENCY_COUNT} gauge"]
    for region, (high, duration) in SCENARIOS.items():
        for k in range(END_S // SCRAPE_S + 1):
            t = k * SCRAPE_S
            p95 = high if ON_S <= t < ON_S + duration else 0.150
            base = f'kind="rum",region="{region}",sli="ttff"'
            lines.append(f'{c.METRIC_LATENCY_QUANTILE}{{{base},quantile="0.95",window="1m"}} {p95} {start + t}')
            lines.append(f"{c.METRIC_LATENCY_COUNT}{{{base}}} {100 * k} {start + t}")
    return "\n".join(lines) + "\n# EOF\n"


class Tsdb:
    """A Prometheus data directory, served by a (re)started real Prometheus."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.data = home / "data"
        self.data.mkdir(parents=True)
        (home / "prometheus.yml").write_text(f"global:\n  evaluation_interval: {SCRAPE_S}s\n")
        self.server: Any = None
        self.starts = 0

    def serve(self) -> str:
        self.stop()
        self.starts += 1
        port = free_port()
        argv = [require(PROMETHEUS, "prometheus"), f"--config.file={self.home / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.data}", f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=30d"]
        self.server = start_server("prometheus", argv, f"http://127.0.0.1:{port}", self.home / f"prom-{self.starts}.log")
        return str(self.server.url)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def add_blocks(self, out: Path) -> None:
        for block in out.iterdir():
            if block.is_dir():
                shutil.move(str(block), self.data / block.name)


def _promtool(*argv: str, cwd: Path) -> None:
    run = subprocess.run([require(PROMTOOL, "promtool"), *argv], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


def _backfill_rules(tsdb: Tsdb, rules: list[dict[str, Any]], name: str, start: int) -> None:
    url = tsdb.serve()
    (tsdb.home / f"{name}.yml").write_text(dump({"groups": [{"name": name, "rules": rules}]}, "# backfill"))
    out = tsdb.home / f"{name}-blocks"
    _promtool("tsdb", "create-blocks-from", "rules", f"--start={start}", f"--end={start + END_S}",
              f"--url={url}", f"--eval-interval={SCRAPE_S}s", f"--output-dir={out}", f"{name}.yml", cwd=tsdb.home)
    tsdb.stop()
    tsdb.add_blocks(out)


def _adapter_query(files: dict[str, str], region: str) -> str:
    """The adapter's metricsQuery for the HPA's selector, filled in as prometheus-adapter does."""
    config = yaml.safe_load(yaml.safe_load(files["kubernetes/prometheus-adapter.yaml"])["data"]["config.yaml"])
    rule = config["externalRules"][0]
    series = rule["name"]["matches"].strip("^$")
    matchers = f'region="{region}",trigger="scale_out"'
    return str(rule["metricsQuery"].replace("<<.Series>>", series).replace("<<.LabelMatchers>>", matchers))


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[int, float | None]]]:
    """Per region, the adapter's answer every 15 s, ``(seconds since start, value or None)``."""
    spec = load_spec(SPEC)[0]
    files = generate(spec, SPEC)
    groups = yaml.safe_load(files["prometheus/rules.yml"])["groups"]
    scaling = next(g for g in groups if g["name"] == c.GROUP_AUTOSCALING_RECORDINGS)["rules"]
    tsdb = Tsdb(tmp_path_factory.mktemp("hpa"))
    start = (int(time.time()) - 3 * 3600) // 7200 * 7200  # a whole, older 2h block
    (tsdb.home / "series.om").write_text(_openmetrics(start))
    _promtool("tsdb", "create-blocks-from", "openmetrics", "series.om", str(tsdb.data), cwd=tsdb.home)
    try:
        _backfill_rules(tsdb, [r for r in scaling if r["record"] == c.RECORD_TRIGGER_RATIO], "ratio", start)
        _backfill_rules(tsdb, [r for r in scaling if r["record"] != c.RECORD_TRIGGER_RATIO], "held", start)
        url = tsdb.serve()
        out: dict[str, list[tuple[int, float | None]]] = {}
        for region in SCENARIOS:
            params = {"query": _adapter_query(files, region), "start": start, "end": start + END_S, "step": SCRAPE_S}
            result = httpx.get(f"{url}/api/v1/query_range", params=params, timeout=30).json()["data"]["result"]
            values = {int(float(t)) - start: float(v) for t, v in (result[0]["values"] if result else [])}
            out[region] = [(t, values.get(t)) for t in range(0, END_S + 1, SCRAPE_S)]
        return out
    finally:
        tsdb.stop()


def _hpa_spec(region: str) -> dict[str, Any]:
    files = generate(load_spec(SPEC)[0], SPEC)
    docs = list(yaml.safe_load_all(files["kubernetes/hpa-live-edge.yaml"]))
    return next(d["spec"] for d in docs if d["metadata"]["labels"][autoscaler.LABEL_REGION] == region)


def _run(spec: dict[str, Any], series: list[tuple[int, float | None]]) -> list[tuple[int, int]]:
    hpa = Hpa(spec, replicas=spec["minReplicas"])
    return [(t, hpa.sync(float(t), value)) for t, value in series]


def _first_change(history: list[tuple[int, int]], after: int, up: bool) -> int | None:
    for (t, n), (_, before) in zip(history[1:], history, strict=False):
        if t >= after and ((n > before) if up else (n < before)):
            return t
    return None


@pytest.mark.prometheus
@pytest.mark.slow
def test_scale_up_starts_two_minutes_after_p95_crosses_200_ms(replay: dict[str, list[tuple[int, float | None]]]) -> None:
    history = _run(_hpa_spec("eu-west-1"), replay["eu-west-1"])
    first_up = _first_change(history, 0, up=True)
    assert first_up is not None
    assert first_up - ON_S == 120, f"scale-up began {first_up - ON_S}s after p95 crossed 200 ms"
    # Scale-down only after the incident and the 5 min stabilization window, 10 % per minute at most.
    first_down = _first_change(history, OFF_S, up=False)
    assert first_down is not None and first_down - OFF_S >= 300 - SCRAPE_S
    peak = max(n for _, n in history)
    assert peak == 60  # maxReplicas
    print(f"\nHPA model: scale-up at +{first_up - ON_S}s, peak {peak} pods, scale-down from +{first_down - OFF_S}s "
          "after the incident")


def test_double_counting_for_would_start_scale_up_at_four_minutes_not_two() -> None:
    """Control without Prometheus: the same series, an HPA whose own window adds another 2 minutes."""
    held = [(t, 1.5 if t >= ON_S + 120 else 0.75) for t in range(0, END_S + 1, SCRAPE_S)]
    spec = _hpa_spec("eu-west-1")
    assert _first_change(_run(spec, held), 0, up=True) == ON_S + 120
    scale_up = {**spec["behavior"]["scaleUp"], "stabilizationWindowSeconds": 120}
    doubled = {**spec, "behavior": {**spec["behavior"], "scaleUp": scale_up}}
    # The HPA keeps the lowest recommendation of the last 120 s: the last low one (one
    # sync before the breach) leaves the window 105 s later, so 3m45s after the crossing.
    assert _first_change(_run(doubled, held), 0, up=True) == ON_S + 240 - SCRAPE_S


SCALES = [
    pytest.param("us-east-1", True, id="p95 at 205 ms scales: the 910m target puts the tolerance edge at the limit"),
    pytest.param("ap-southeast-1", False, id="p95 at 195 ms never scales"),
    pytest.param("sa-east-1", False, id="p95 above the limit for 100 s (less than for: 2m) never scales"),
]


@pytest.mark.prometheus
@pytest.mark.slow
@pytest.mark.parametrize(("region", "scales"), SCALES)
def test_only_a_held_breach_scales(replay: dict[str, list[tuple[int, float | None]]], region: str, scales: bool) -> None:
    history = _run(_hpa_spec(region), replay[region])
    first_up = _first_change(history, 0, up=True)
    assert (first_up is not None) is scales
    if scales:
        assert first_up == ON_S + 120


def test_without_the_tolerance_correction_205_ms_would_not_scale() -> None:
    """Control: a target of 1.0 leaves 2.5 % above the limit inside the 10 % tolerance."""
    spec = _hpa_spec("us-east-1")
    naive = {**spec, "metrics": [{"external": {"target": {"value": "1"}}}]}
    assert Hpa(naive, replicas=3).desired_from_metric(0.205 / 0.2) == 3
    assert Hpa(spec, replicas=3).desired_from_metric(0.205 / 0.2) == 4
