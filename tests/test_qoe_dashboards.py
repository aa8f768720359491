"""The QoE dashboard panels (issue 16): present for the spec's SLIs, and every query answers from a real Prometheus.

``streamslo run --spec tests/specs/qoe.yaml`` (the embedded pipeline) takes a
seeded corpus of v1 beacons: per region and CDN (two allow-listed, one not,
which becomes ``other``), every beacon plays 10 s with one 500 ms stall,
reports its live latency, one first frame, one exit before start and an
error of each class. A real Prometheus scrapes it every second and evaluates
the generated rules; then every query of the overview dashboard must return
data, the rebuffer ratio panels must read 500 / 10 500, and the CDN breakdown
must show every allow-listed value and ``other``.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from slo import conventions as c
from slo.spec import load_spec
from streamslo.generate import generate
from streamslo.testing.prometheus import Server
from tests.test_embedded import embedded_server

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = "tests/specs/qoe.yaml"
SPEC, _ = load_spec(ROOT / SPEC_PATH)
BOARD = json.loads(generate(SPEC, SPEC_PATH)["grafana/dashboards/streamslo-slo-overview.json"])
REGION = "eu-west-1"
CDNS = ("akamai", "fastly", "edgio")  # edgio is not in the spec's allow-list: it is reported as other
STALL_MS, PLAYED_MS = 500, 10_000
REBUFFER_RATIO = STALL_MS / (STALL_MS + PLAYED_MS)


def _panel(title_start: str) -> dict[str, Any]:
    return next(p for p in BOARD["panels"] if p["title"].startswith(title_start))


@pytest.mark.parametrize(
    "title",
    [
        pytest.param("live_latency percentiles", id="live latency quantiles against the objective"),
        pytest.param("Rebuffer ratio", id="the rebuffer ratio against its objective"),
        pytest.param("Exits before start ratio", id="the exits-before-start ratio against its objective"),
        pytest.param("Playback errors by class", id="fatal, warning and business error rates"),
        pytest.param("rebuffering by cdn", id="rebuffering broken down by the spec's dimension"),
        pytest.param("ttff-p95 by cdn", id="an opted-in latency SLO broken down by the dimension"),
    ],
)
def test_the_qoe_spec_gets_a_panel_for(title: str) -> None:
    assert _panel(title)["targets"]


def test_slis_that_do_not_opt_in_get_no_dimension_panel() -> None:
    split = {p["title"].split(" by ")[0] for p in BOARD["panels"] if " by cdn" in p["title"]}
    assert split == {s.name for s in SPEC.slos if SPEC.splits(s.sli)}


def test_a_spec_without_qoe_slis_keeps_only_the_error_classes_panel() -> None:
    short, _ = load_spec(ROOT / "tests/specs/short.yaml")
    board = json.loads(generate(short, "tests/specs/short.yaml")["grafana/dashboards/streamslo-slo-overview.json"])
    titles = [p["title"] for p in board["panels"]]
    assert "Playback errors by class" in titles
    assert not [t for t in titles if t.startswith(("Rebuffer", "Exits", "Viewing quality", "By "))]


# --- a real Prometheus over the real pipeline ------------------------------------------


def _corpus(seq: Iterator[int]) -> list[dict[str, Any]]:
    """One beacon per (region, CDN), each a whole viewing session's worth of QoE events."""
    now = time.time()
    beacons = []
    for region, cdn in itertools.product(SPEC.regions, CDNS):
        n = next(seq)
        events: list[dict[str, Any]] = [
            {"type": c.EVENT_FIRST_FRAME, "value_ms": 120},
            {"type": c.EVENT_STALL, "value_ms": STALL_MS},
            {"type": c.EVENT_PLAYING, "value_ms": PLAYED_MS},
            {"type": c.EVENT_LIVE_LATENCY, "value_ms": 3000},
            {"type": c.EVENT_EXIT_BEFORE_START, "value_ms": 4000},
            *({"type": c.EVENT_ERROR, "code": "E1", "class": k} for k in c.ERROR_CLASSES),
        ]
        beacons.append({
            "v": 1, "session_id": f"qoe-{n}", "seq": 1, "sent_at": now, "region": region,
            "dimensions": {"cdn": cdn}, "events": [{"ts": now - 0.5, **e} for e in events],
        })
    return beacons


def _query(prom: Server, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prom.url}/api/v1/query", params={"query": expr}, timeout=10)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def _exprs(panel: dict[str, Any]) -> list[str]:
    return [t["expr"].replace("$region", REGION) for t in panel.get("targets", [])]


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[str]:
    with embedded_server(f"streamslo run --spec {SPEC_PATH}", tmp_path / "streamslo-run.log") as url:
        yield url


@pytest.mark.prometheus
def test_every_overview_query_returns_data_and_the_rebuffer_panels_read_the_corpus_ratio(
    pipeline: str, prometheus_server: Callable[..., Server]
) -> None:
    rules = generate(SPEC, SPEC_PATH)["prometheus/rules.yml"]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yml"],
        "scrape_configs": [{"job_name": "streamslo", "static_configs": [{"targets": [pipeline.removeprefix("http://")]}]}],
    }
    prom = prometheus_server(yaml.safe_dump(config), rule_files={"rules.yml": rules})
    panels = [p for p in BOARD["panels"] if p.get("targets")]
    seq = itertools.count()
    empty = ["not queried yet"]
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=pipeline, timeout=5) as client:
        while empty and time.monotonic() < deadline:
            for body in _corpus(seq):
                assert client.post("/v1/beacons", json=body).status_code == 202
            time.sleep(0.5)
            empty = [f"{p['title']}: {e}" for p in panels for e in _exprs(p) if not _query(prom, e)]
    assert empty == [], "panels without data:\n" + "\n".join(empty)

    for expr in _exprs(_panel("Rebuffer ratio")):
        values = [float(r["value"][1]) for r in _query(prom, expr)]
        assert values and all(v == pytest.approx(REBUFFER_RATIO, rel=1e-6) for v in values), (expr, values)
    (by_cdn,) = _exprs(_panel("rebuffering by cdn"))
    rows = _query(prom, by_cdn)
    assert {r["metric"]["cdn"] for r in rows} == {"akamai", "fastly", c.REGION_OTHER}
    assert all(float(r["value"][1]) == pytest.approx(REBUFFER_RATIO, rel=1e-6) for r in rows)
