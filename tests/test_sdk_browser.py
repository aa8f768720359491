"""The player SDK end to end: Debian's Chromium plays a real video and reports to ``streamslo run``.

Nothing is mocked: the built IIFE (``sdk/web/dist``) runs in headless Chromium
(driven by ``sdk/web/e2e/drive.mjs``, playwright-core), plays a VP9 WebM made
here with ffmpeg, times interactions against an echo with a known delay, plays
the same file as a live MediaSource stream whose second part is appended
``STALL_MS`` late (a real ``waiting``: one stall), seeks back in it (no stall),
and reports to a real ``streamslo run`` subprocess (``tests/sdk/qoe-spec.yaml``:
a ``cdn`` dimension on ttff and rebuffering). Two viewers:

- ``eu-west-1`` (cdn ``fastly``) reports straight to ``streamslo run``
  (cross-origin: ``--cors-origin``) with a production key, which the keyless
  dev server must accept;
- ``us-east-1`` (cdn ``limelight``, not in the spec's allow-list: ``other``)
  reports through a proxy whose first two answers are 503 + ``Retry-After: 1``;
  the first of those was in fact delivered, so only deduplication by
  ``(session_id, seq)`` keeps the counts exact.

The page logs every beacon it sends; the stall, played-time and live-latency
counters on ``/metrics`` must equal what that log says was reported.

Each page's last events (a stalled play attempt, one interaction) can only
leave by the ``pagehide`` beacon. Screenshots of the test page and the status
page go to ``test-artifacts/sdk/``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from slo import conventions as c
from tests.conftest import ROOT
from tests.sdk.npm import SDK, built, needs_node
from tests.sdk.pageserver import page_server
from tests.test_embedded import embedded_server, sample

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FFMPEG = shutil.which("ffmpeg")
ARTIFACTS = ROOT / "test-artifacts" / "sdk"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    needs_node,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/install-deps.sh)"),
    pytest.mark.skipif(FFMPEG is None, reason="ffmpeg not installed (scripts/install-deps.sh)"),
]

# (region, echo delay ms, interactions in phase 1, via the flaky proxy, the cdn it reports)
VIEWERS = [("eu-west-1", 150, 12, False, "fastly"), ("us-east-1", 300, 8, True, "limelight")]
# The cdn label /metrics shows for each: limelight is outside the spec's allow-list.
CDN_LABEL = {"fastly": "fastly", "limelight": c.REGION_OTHER}
SPEC = ROOT / "tests" / "sdk" / "qoe-spec.yaml"
PROD_KEY = "k-production-0001"
# How long the live stream's second part is held back once the player waits for it.
STALL_MS = 1500
# Server-side delay is exact from below (sleep never returns early); above it, the
# loopback round trip and a busy 2-core CI box. The sketch adds ~1 % either way.
SLACK_MS = 200
SKETCH_ERROR = 0.01


def make_video(path: Path) -> Path:
    """A 3 s, 320x240 VP9 WebM test pattern."""
    assert FFMPEG is not None
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc2=size=320x240:rate=25", "-t", "3", "-c:v", "libvpx-vp9",
                    "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-pix_fmt", "yuv420p",
                    str(path)], check=True, timeout=120)
    return path


# JSON from the page (window.__result) and the beacons it logged.
Json = dict[str, Any]


def beacons_sent(page: Json) -> list[Json]:
    """The page's log of what it sent before closing, each beacon once (a retry resends its seq)."""
    by_seq = {b["seq"]: b for b in page["sent"]}
    return [by_seq[seq] for seq in sorted(by_seq)]


def reported(beacons: list[Json]) -> dict[str, float]:
    """What the page's log says it reported: stalls, played time and live-latency samples."""
    events = [e for b in beacons for e in b["events"]]

    def values(kind: str) -> list[float]:
        return [float(e["value_ms"]) for e in events if e["type"] == kind]
    return {
        "stalls": len(values(c.EVENT_STALL)),
        "rebuffer_s": sum(values(c.EVENT_STALL)) / 1000,
        "played_s": sum(values(c.EVENT_PLAYING)) / 1000,
        "live_latency": len(values(c.EVENT_LIVE_LATENCY)),
    }


def expected(n: int, page_log: dict[str, float]) -> dict[str, float]:
    """Per region: first frames of the file and of the live stream, n + 1 interactions; an attempt
    ends in a first frame, a fatal error (the broken video) or an exit (the stalled video, at
    pagehide); one warning (E2E_NONFATAL), one business refusal (GEO_BLOCKED); the rest as logged."""
    return {"ttff": 2, "interaction_rtt": n + 1, "attempts": 4, "errors": 1, "exits": 1,
            "warnings": 1, "business": 1, **page_log}


def observed(text: str, region: str, cdn: str) -> dict[str, float | None]:
    """The same counts on /metrics; ttff and the rebuffering counters carry the cdn dimension."""
    rum = {"region": region, "kind": c.KIND_RUM}
    return {
        "ttff": sample(text, c.METRIC_LATENCY_COUNT, **rum, sli=c.SLI_TTFF, cdn=cdn),
        "interaction_rtt": sample(text, c.METRIC_LATENCY_COUNT, **rum, sli=c.SLI_INTERACTION),
        "attempts": sample(text, c.METRIC_ATTEMPTS, **rum),
        "errors": sample(text, c.METRIC_ERRORS, **rum),
        "exits": sample(text, c.METRIC_EXITS_BEFORE_START, **rum),
        "warnings": sample(text, c.METRIC_WARNINGS, **rum),
        "business": sample(text, c.METRIC_BUSINESS_ERRORS, **rum),
        "stalls": sample(text, c.METRIC_REBUFFER_EVENTS, **rum, cdn=cdn),
        "rebuffer_s": sample(text, c.METRIC_REBUFFER_SECONDS, **rum, cdn=cdn),
        "played_s": sample(text, c.METRIC_PLAYED_SECONDS, **rum, cdn=cdn),
        "live_latency": sample(text, c.METRIC_LATENCY_COUNT, **rum, sli=c.SLI_LIVE_LATENCY),
    }


def drive(config: Json) -> dict[str, list[Json]]:
    proc = subprocess.run(["node", "e2e/drive.mjs", json.dumps(config)], cwd=SDK,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"drive.mjs exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    result: dict[str, list[Json]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_a_real_browser_reports_every_measurement_exactly_once(tmp_path: Path) -> None:
    built()
    video = make_video(tmp_path / "video.webm")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with page_server(video, fail_first=2) as srv, embedded_server(
        f"streamslo run --spec {SPEC} --cors-origin {srv.base} --flush-interval 0.2", tmp_path / "run.log"
    ) as base:
        srv.collector = base
        pages = []
        for region, delay, n, proxied, cdn in VIEWERS:
            query = {"region": region, "delay_ms": delay, "n": n, "stall_ms": STALL_MS, "cdn": cdn,
                     "collector": f"{srv.base}/proxy" if proxied else base}
            if not proxied:
                query["key"] = PROD_KEY
            pages.append({"url": srv.url(f"/page.html?{urlencode(query)}"), "shot": str(ARTIFACTS / f"page-{region}.png")})
        results = drive({"chromium": CHROMIUM, "pages": pages,
                         "status": {"url": f"{base}/", "shot": str(ARTIFACTS / "status-page.png"), "settleMs": 2500}})

        # Before the pages closed: phase 1 was acknowledged in one beacon; the proxied one after two retries.
        logs = {}
        for (region, _, _, proxied, cdn), page in zip(VIEWERS, results["pages"], strict=True):
            assert page["sampled"] is True
            assert page["stats"] == {"sent": 1, "retries": 2 if proxied else 0, "droppedOverflow": 0,
                                     "droppedRefused": 0, "droppedExhausted": 0, "droppedInvalid": 0}, region
            beacons = beacons_sent(page)
            assert [b["seq"] for b in beacons] == [0] and beacons[0]["dimensions"] == {"cdn": cdn}, region
            logs[region] = reported(beacons)
            # One real stall of at least the hold-back (the seek's wait is none); played time and
            # live samples were really measured: the page's log is no empty shell.
            assert logs[region]["stalls"] == 1 and logs[region]["rebuffer_s"] >= STALL_MS / 1000, (region, logs)
            assert logs[region]["played_s"] > 3 and logs[region]["live_latency"] >= 2, (region, logs)

        # The counts per SLI and region, once the pagehide beacons have landed.
        want = {r: expected(n, logs[r]) for r, _, n, _, _ in VIEWERS}
        deadline = time.monotonic() + 30
        while True:
            text = httpx.get(f"{base}/metrics", timeout=5).text
            got = {r: observed(text, r, CDN_LABEL[cdn]) for r, *_, cdn in VIEWERS}
            if all(got[r] == pytest.approx(want[r], rel=1e-9) for r in want) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        # the +1 interaction and the exit of each region came only by the pagehide beacon
        for region in want:
            assert got[region] == pytest.approx(want[region], rel=1e-9), region
        assert sample(text, c.METRIC_LATENCY_COUNT, region=c.REGION_OTHER, sli=c.SLI_TTFF, kind=c.KIND_RUM) in (None, 0)
        # The rebuffering SLO's ratio over the period: stall time / (stall + played time), exactly.
        for region, log in logs.items():
            ratio = sample(text, c.METRIC_SLI_RATIO, region=region, slo=c.SLI_REBUFFERING, window="1h")
            assert ratio == pytest.approx(log["rebuffer_s"] / (log["rebuffer_s"] + log["played_s"]), rel=1e-9), region

        # Collector: every event accepted (the proxy's delivered-but-503 copy too), the copy deduplicated.
        phase1 = {r: len(beacons_sent(p)[0]["events"]) for (r, *_), p in zip(VIEWERS, results["pages"], strict=True)}
        total = sum(phase1.values()) + 2 * len(VIEWERS) + phase1["us-east-1"]  # + exit, on_close each; + the copy
        assert sample(text, c.METRIC_COLLECTOR_EVENTS, outcome=c.OUTCOME_ACCEPTED) == total
        assert sample(text, c.METRIC_COLLECTOR_REFUSED, reason=c.REASON_UNAUTHORIZED) == 0
        dup = re.search(rf"^{c.METRIC_STREAM_DUPLICATES} (\S+)$", text, flags=re.M)
        assert dup and float(dup.group(1)) == 1  # the proxy's delivered-but-503 copy

        # Interaction quantiles within the timer tolerance of the echo's known delay; ttff plausible.
        for region, delay, *_ in VIEWERS:
            for q in c.EXPORTED_QUANTILES:
                v = sample(text, c.METRIC_LATENCY_QUANTILE, region=region, sli=c.SLI_INTERACTION,
                           kind=c.KIND_RUM, window="1m", quantile=str(q))
                assert v is not None, (region, q)
                assert delay / 1000 * (1 - SKETCH_ERROR) <= v <= (delay + SLACK_MS) / 1000 * (1 + SKETCH_ERROR), (region, q, v)
            ttff = sample(text, c.METRIC_LATENCY_QUANTILE, region=region, sli=c.SLI_TTFF,
                          kind=c.KIND_RUM, window="1m", quantile="0.99")
            assert ttff is not None and 0.0 < ttff < 5.0, (region, ttff)

    # The proxy saw: attempt 1 (delivered, answered 503), attempt 2 (503), attempt 3 (202),
    # all the same (session_id, seq) with a fresh sent_at, then the pagehide beacon.
    reqs = srv.proxy.requests
    assert [(r["seq"], r.get("collector_status")) for r in reqs] == [(0, 202), (0, None), (0, 202), (1, 202)]
    assert len({r["session_id"] for r in reqs}) == 1
    sent_at = [float(r["sent_at"]) for r in reqs[:3]]
    assert sent_at[1] - sent_at[0] >= 0.95 and sent_at[2] - sent_at[1] >= 0.95  # Retry-After: 1 honoured
    assert all(str(r["content_type"]).startswith("text/plain") for r in reqs)
    assert reqs[-1]["mode"] == "no-cors" and reqs[-1]["events"] == 2  # sendBeacon: exit_before_start + on_close
    for shot in ("page-eu-west-1.png", "page-us-east-1.png", "status-page.png"):
        assert (ARTIFACTS / shot).stat().st_size > 5_000, shot
