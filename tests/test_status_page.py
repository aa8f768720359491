"""The status page in headless Chromium against a running ``streamslo run --demo``, and its QoE rows.

The page's JavaScript must fetch ``/api/status`` and render one card per
region, with a row per objective (the default spec's live latency,
exits-before-start and rebuffering ones included); with the demo incident
on, that region's card must show a breach. A screenshot is saved under
``artifacts/`` for a human to look at. The QoE rows' numbers are checked on
the engine's status JSON: a ratio SLO shows stage 2's bad / total per window
against its objective, live latency is a latency row.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from slo import conventions as c
from slo.beacon import Beacon, Event
from slo.spec import load_spec
from streamslo.engine import Engine
from tests.conftest import ROOT
from tests.test_embedded import embedded_server

SPEC, _ = load_spec()
QOE, _ = load_spec(ROOT / "tests/specs/qoe.yaml")
INCIDENT = "eu-west-1"
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/install-deps.sh)")


def chromium(url: str, profile: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium, fully offline-capable flags; ``mode`` is --dump-dom or --screenshot=..."""
    argv = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1300",
        # let the page's fetch + render run (virtual time pauses while requests are in flight)
        "--virtual-time-budget=4000", *mode, url,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=90)


def cards(dom: str) -> dict[str, str]:
    """region -> data-status of each rendered region card."""
    pattern = r'<article class="region [^"]*" data-region="([^"]+)" data-status="([^"]+)"'
    return dict(re.findall(pattern, dom))


@pytest.mark.slow
@pytest.mark.browser
@needs_chromium
def test_status_page_renders_every_region_and_shows_the_incident_as_a_breach(tmp_path: Path) -> None:
    with embedded_server(f"streamslo run --demo --incident {INCIDENT}", tmp_path / "run.log") as base:
        # wait until the engine has data for every region (the demo sends a few beacons a second)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = httpx.get(f"{base}/api/status", timeout=5).json()
            if all(r["status"] != "no_data" for r in status["regions"]):
                break
            time.sleep(0.5)

        result = chromium(f"{base}/", tmp_path / "profile-dom", "--dump-dom")
        assert result.returncode == 0, result.stderr[-2000:]
        dom = result.stdout
        assert 'data-loaded="1"' in dom, "the page's script did not render the status"
        rendered = cards(dom)
        assert set(rendered) == set(SPEC.regions)
        assert rendered[INCIDENT] == "breach"
        assert "no_data" not in rendered.values()
        assert "demo incident on" in dom
        for row in ("live_latency p95", "exits before start ratio", "rebuffering ratio", "error ratio"):
            assert f"<td>{row}</td>" in dom, row

        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "status-page.png"
        shot.unlink(missing_ok=True)
        result = chromium(f"{base}/", tmp_path / "profile-shot", f"--screenshot={shot}")
        assert result.returncode == 0, result.stderr[-2000:]
        assert shot.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("path", "media_type"),
    [("/", "text/html"), ("/status/app.js", "javascript"), ("/status/style.css", "text/css")],
    ids=["the page", "its script", "its stylesheet"],
)
async def test_status_assets_load_from_the_server_itself(path: str, media_type: str) -> None:
    # No CDN, no network: everything the page loads is served by streamslo.
    from streamslo.embedded import build_app

    app, _ = build_app(SPEC)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://embedded") as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert media_type in response.headers["content-type"]
    assert not re.search(r"""(src|href)=["']https?://""", response.text)


# --- the QoE rows (issue 16), from the engine's status JSON ---------------------------

T0 = 1_764_150_000.0


def _qoe_card(seconds: int, per_s: int, stall_ms: float, exit_every: int, live_ms: float) -> dict[str, Any]:
    """The eu-west-1 card after ``per_s`` viewers a second for ``seconds``: each plays 1 s, stalls
    ``stall_ms``, reports its live latency and starts (every ``exit_every``-th leaves before the first frame)."""
    clock = [T0]
    engine = Engine(QOE, clock=lambda: clock[0])
    n = 0
    for second in range(seconds):
        now = T0 + second
        for _ in range(per_s):
            n += 1
            start = (Event(c.EVENT_EXIT_BEFORE_START, now, 3000.0) if exit_every and n % exit_every == 0
                     else Event(c.EVENT_FIRST_FRAME, now, 100.0))
            events = [start, Event(c.EVENT_PLAYING, now, 1000.0), Event(c.EVENT_STALL, now, stall_ms),
                      Event(c.EVENT_LIVE_LATENCY, now, live_ms)]
            engine.sink(Beacon(f"s{n}", 1, "eu-west-1", c.KIND_RUM, now, now, events, dim="akamai"))
        engine.flush(now + 0.5)
    clock[0] = T0 + seconds
    return next(r for r in engine.status()["regions"] if r["region"] == "eu-west-1")


def _ratio(card: dict[str, Any], sli: str) -> dict[str, Any]:
    row: dict[str, Any] = next(r for r in card["ratios"] if r["sli"] == sli)
    return row


QOE_ROWS = [
    pytest.param(c.SLI_REBUFFERING, dict(seconds=20, per_s=5, stall_ms=50.0, exit_every=0, live_ms=3000.0),
                 50 / 1050, True, id="rebuffering shows stall / (stall + played) per window and breaches above 0.5 %"),
    pytest.param(c.SLI_REBUFFERING, dict(seconds=20, per_s=5, stall_ms=2.0, exit_every=0, live_ms=3000.0),
                 2 / 1002, False, id="a rebuffer ratio below its objective is no breach"),
    pytest.param(c.SLI_REBUFFERING, dict(seconds=2, per_s=2, stall_ms=50.0, exit_every=0, live_ms=3000.0),
                 50 / 1050, False, id="too few seconds watched for the low-traffic guard: the ratio shows, no breach"),
    pytest.param(c.SLI_EXITS_BEFORE_START, dict(seconds=20, per_s=5, stall_ms=0.0, exit_every=5, live_ms=3000.0),
                 0.2, True, id="exits before start show against every attempt and breach above 2 %"),
]


@pytest.mark.parametrize(("sli", "traffic", "ratio", "breach"), QOE_ROWS)
def test_a_ratio_slo_row_shows_its_ratio_against_the_objective(
    sli: str, traffic: dict[str, Any], ratio: float, breach: bool
) -> None:
    card = _qoe_card(**traffic)
    row = _ratio(card, sli)
    assert row["max_ratio"] == QOE.slo(sli).budget
    assert row["ratio"] == {"10s": pytest.approx(ratio), "1m": pytest.approx(ratio)}
    assert row["breach"] == {"10s": breach, "1m": breach}
    assert (card["status"] == "breach") is breach


@pytest.mark.parametrize(("live_ms", "breach"), [(3000.0, False), (8000.0, True)],
                         ids=["live latency under 5 s is a latency row without breach",
                              "live latency of 8 s breaches its p95 objective like any latency row"])
def test_live_latency_is_a_latency_row(live_ms: float, breach: bool) -> None:
    card = _qoe_card(seconds=20, per_s=5, stall_ms=0.0, exit_every=0, live_ms=live_ms)
    row = next(r for r in card["latency"] if r["sli"] == c.SLI_LIVE_LATENCY)
    assert row["threshold_ms"] == 5000.0
    assert row["values_ms"]["10s"] == pytest.approx(live_ms, rel=0.01)
    assert row["breach"]["10s"] is breach


def test_a_region_without_data_has_empty_ratio_rows() -> None:
    card = next(r for r in Engine(QOE, clock=lambda: T0).status()["regions"] if r["region"] == "us-east-1")
    assert card["status"] == "no_data"
    assert [r["slo"] for r in card["ratios"]] == ["exits_before_start", "rebuffering"]
    assert all(v is None for r in card["ratios"] for v in r["ratio"].values())
    assert card["errors"] is None
