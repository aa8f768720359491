"""The status page in headless Chromium against a running ``streamslo run --demo``.

The page's JavaScript must fetch ``/api/status`` and render one card per
region; with the demo incident on, that region's card must show a breach.
A screenshot is saved under ``artifacts/`` for a human to look at.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from slo.spec import load_spec
from tests.conftest import ROOT
from tests.test_embedded import embedded_server

SPEC, _ = load_spec()
INCIDENT = "eu-west-1"
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/install-deps.sh)"),
]


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
