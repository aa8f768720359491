"""The embedded mode: the engine facade (in process) and ``streamslo run`` as a user runs it.

The engine tests drive the real stage 1 and stage 2 with hand-made beacons and
an explicit clock; the end-to-end test starts the README's run command as a
subprocess and reads ``/metrics`` over HTTP (the README's install command is
not re-run here: ``.ci/run`` runs it, from a clean clone, before the tests). :func:`embedded_server` is shared
with the status-page and probe tests.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from slo import conventions as c
from slo.beacon import Beacon, Event
from slo.spec import load_spec, parse_spec
from streamslo.engine import Engine
from streamslo.testing.ports import free_port, wait_for_http
from tests.conftest import ROOT

SPEC, _ = load_spec()
README = ROOT / "README.md"


def streamslo_argv(command: str) -> list[str]:
    """A ``streamslo ...`` command line as argv; falls back to ``python -m`` without the script."""
    argv = shlex.split(command)
    if argv[0] == "streamslo" and shutil.which("streamslo") is None:
        argv = [sys.executable, "-m", "streamslo.cli", *argv[1:]]
    return argv


@contextmanager
def embedded_server(command: str, log: Path, ready_timeout_s: float = 20.0) -> Iterator[str]:
    """Run ``command`` (a ``streamslo run ...`` line) on a free port; yield its base URL."""
    port = free_port()
    argv = [*streamslo_argv(command), "--port", str(port), "--log-level", "warning"]
    base = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_http(f"{base}/healthz", proc, timeout=ready_timeout_s, log=log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """The value of one series in a Prometheus text exposition (labels matched as a subset)."""
    for line in metrics.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


# --- the engine facade, in process ------------------------------------------------

# A spec with short windows so burn tiers and triggers develop within seconds of
# simulated time: fast tier 1m/10s at 14.4x, trigger for 5 s.
SHORT: dict[str, Any] = {
    "apiVersion": "streamslo/v1",
    "name": "short",
    "period": "1h",
    "regions": ["eu-west-1", "us-east-1"],
    "stream": {"pane": "1s", "quantile_windows": ["10s", "1m"]},
    "alerting": {"low_traffic_min_events": 10, "tiers": [{"name": "fast", "long": "1m", "short": "10s", "factor": 14.4, "severity": "page"}]},
    "slos": [
        {"sli": "ttff", "objectives": [{"quantile": 0.99, "threshold_ms": 300}]},
        {"sli": "errors", "objectives": [{"max_ratio": 0.01}]},
    ],
    "triggers": [{"name": "failover", "action": "fail over", "window": "10s", "for": "5s", "min_events": 5,
                  "any": [{"sli": "ttff", "quantile": 0.99, "above_ms": 300}]}],
}
T0 = 1_764_150_000.0


def feed(engine: Engine, region: str, ttff_ms: float, seconds: int, per_s: int = 10, fatal_every: int = 0) -> None:
    """Send ``per_s`` sessions a second for ``seconds`` simulated seconds, flushing each second."""
    n = 0
    for second in range(seconds):
        now = T0 + second
        for i in range(per_s):
            n += 1
            event = (Event(c.EVENT_ERROR, now, None, True) if fatal_every and n % fatal_every == 0
                     else Event(c.EVENT_FIRST_FRAME, now, ttff_ms + i))
            engine.sink(Beacon(f"{region}-{n}", 1, region, c.KIND_RUM, now, now, [event]))
        engine.flush(now + 0.5)


def region_card(engine: Engine, region: str) -> dict[str, Any]:
    return next(r for r in engine.status()["regions"] if r["region"] == region)


CASES = [
    ("a healthy region is ok and nothing fires", 120.0, 30, 0, "ok", False, "off"),
    ("slow first frames breach p99, fire the fast tier and the trigger", 600.0, 30, 0, "breach", True, "firing"),
    ("slow first frames for less than the trigger's 5 s leave it pending", 600.0, 3, 0, "breach", True, "pending"),
    ("failed starts alone fire the error tier, not the latency trigger", 120.0, 30, 5, "breach", True, "off"),
]


@pytest.mark.parametrize(("ttff_ms", "seconds", "fatal_every", "status", "tier_fires", "trigger"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_engine_status_follows_the_traffic(
    ttff_ms: float, seconds: int, fatal_every: int, status: str, tier_fires: bool, trigger: str
) -> None:
    spec, _ = parse_spec(SHORT)
    clock = [T0]
    engine = Engine(spec, clock=lambda: clock[0])
    feed(engine, "eu-west-1", ttff_ms, seconds, fatal_every=fatal_every)
    clock[0] = T0 + seconds
    card = region_card(engine, "eu-west-1")
    assert card["status"] == status
    assert any(t["firing"] for s in card["slos"] for t in s["tiers"]) == tier_fires
    state = card["triggers"][0]
    assert ("firing" if state["firing"] else "pending" if state["condition"] else "off") == trigger
    # the region without traffic says so
    assert region_card(engine, "us-east-1")["status"] == "no_data"


@pytest.mark.parametrize(("seconds", "per_s", "breach"), [(30, 10, True), (1, 5, False)],
                         ids=["a 20 % error ratio shows in every window, the shortest included, as a breach",
                              "5 attempts are below the low-traffic guard: the ratio shows, no breach"])
def test_status_shows_the_error_ratio_of_every_quantile_window(seconds: int, per_s: int, breach: bool) -> None:
    # 5s is a quantile window but no alerting window: no burn rate to derive a ratio from
    spec, problems = parse_spec({**SHORT, "stream": {"pane": "1s", "quantile_windows": ["5s", "10s", "1m"]}})
    assert spec is not None and 5.0 not in spec.alert_windows_s, problems
    clock = [T0]
    engine = Engine(spec, clock=lambda: clock[0])
    feed(engine, "eu-west-1", 120.0, seconds, per_s=per_s, fatal_every=5)  # 1 in 5 starts fails
    clock[0] = T0 + seconds
    errors = region_card(engine, "eu-west-1")["errors"]
    assert errors["ratio"] == {"5s": pytest.approx(0.2), "10s": pytest.approx(0.2), "1m": pytest.approx(0.2)}
    assert errors["breach"] == {"5s": breach, "10s": breach, "1m": breach}


def test_engine_counts_each_beacon_once_and_reports_what_it_saw() -> None:
    spec, _ = parse_spec(SHORT)
    engine = Engine(spec, clock=lambda: T0 + 5)
    beacon = Beacon("s1", 1, "eu-west-1", c.KIND_RUM, T0, T0, [Event(c.EVENT_FIRST_FRAME, T0, 250.0)])
    engine.sink(beacon)
    engine.sink(beacon)  # a retry: same (session_id, seq)
    engine.flush(T0 + 1)
    series = engine.snapshot().regions["eu-west-1"].series[(c.SLI_TTFF, c.KIND_RUM)]
    assert series.count == 1
    card = region_card(engine, "eu-west-1")
    p99 = next(r for r in card["latency"] if r["quantile"] == 0.99)
    assert p99["values_ms"]["10s"] == pytest.approx(250.0, rel=0.01)  # sketch accuracy


# --- the README's run command, end to end -------------------------------------------


def readme_commands() -> list[str]:
    """Every command line in the README's ```sh blocks (continuations joined)."""
    blocks = re.findall(r"^```sh\n(.*?)^```", README.read_text(), flags=re.M | re.S)
    text = "\n".join(blocks).replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def readme_run_command() -> str:
    commands = [cmd.split("#")[0].strip() for cmd in readme_commands() if cmd.startswith("streamslo run")]
    assert commands, "README.md shows no `streamslo run` command"
    return commands[0]


@pytest.mark.slow
def test_readme_run_command_serves_metrics_for_every_demo_region_within_30s(tmp_path: Path) -> None:
    command = readme_run_command()
    assert "--demo" in command
    started = time.monotonic()
    with embedded_server(command, tmp_path / "run.log") as base:
        missing: set[str] = set(SPEC.regions)
        while missing and time.monotonic() - started < 30:
            text = httpx.get(f"{base}/metrics", timeout=5).text
            missing = {
                r for r in SPEC.regions
                if not sample(text, c.METRIC_LATENCY_COUNT, region=r, sli=c.SLI_TTFF, kind=c.KIND_RUM)
            }
            time.sleep(0.5)
        assert not missing, f"no ttff samples after 30 s for {sorted(missing)}"
        # the same names as the distributed mode, from one registry
        for name in (c.METRIC_LATENCY_QUANTILE, c.METRIC_ATTEMPTS, c.METRIC_BURN_RATE,
                     c.METRIC_BUDGET_REMAINING, c.METRIC_COLLECTOR_BEACONS, c.METRIC_STREAM_FRESHNESS,
                     c.METRIC_STREAM_LAG, c.METRIC_STREAM_DUPLICATES, c.METRIC_TRIGGER_ACTIVE):
            assert re.search(rf"^{name}[{{ ]", text, flags=re.M), name
        # the incident switch answers, and refuses unknown regions
        assert httpx.post(f"{base}/api/demo/incident", params={"region": "eu-west-1", "on": 1}).json() == {"incidents": ["eu-west-1"]}
        assert httpx.post(f"{base}/api/demo/incident", params={"region": "mars-1", "on": 1}).status_code == 400


# --- the demo incident, in process --------------------------------------------------


async def test_demo_incident_trips_the_burn_tier_and_the_trigger_of_a_short_window_spec() -> None:
    # The demo's beacons go through the collector's handler into the engine, as in
    # `streamslo run --demo`; with 10 s/1m tiers and a 2 s trigger the incident
    # must fire both within seconds, and the healthy region must fire neither.
    import asyncio

    from streamslo.embedded import build_app

    raw = {**SHORT, "triggers": [{**SHORT["triggers"][0], "for": "2s"}]}
    spec, _ = parse_spec(raw)
    app, engine = build_app(spec, demo=True, incidents=["eu-west-1"], flush_interval_s=0.2, demo_beacons_per_s=25)
    async with app.router.lifespan_context(app):
        cards: dict[str, dict[str, Any]] = {}
        for _ in range(40):
            await asyncio.sleep(0.25)
            cards = {r["region"]: r for r in engine.status()["regions"]}
            if cards["eu-west-1"]["triggers"][0]["firing"]:
                break
    sick, healthy = cards["eu-west-1"], cards["us-east-1"]
    # demo events never lie in the future: freshness is small and never negative
    assert all(0.0 <= card["freshness_s"] < 5.0 for card in cards.values()), cards
    assert sick["status"] == "breach" and sick["incident"]
    assert sick["triggers"][0]["firing"]
    assert {s["slo"] for s in sick["slos"] if any(t["firing"] for t in s["tiers"])} >= {"ttff-p99"}
    # (the healthy region's status is not asserted: a single failed start among a few
    # dozen attempts is a real 10 s error-ratio breach; its latencies must be fine)
    assert not healthy["incident"]
    assert not any(any(row["breach"].values()) for row in healthy["latency"])
    assert not healthy["triggers"][0]["condition"]
    assert not any(t["firing"] for s in healthy["slos"] if s["slo"] == "ttff-p99" for t in s["tiers"])


@pytest.mark.parametrize(("incident", "check"), [(False, "healthy"), (True, "incident")],
                         ids=["healthy demo traffic meets every objective of the default spec",
                              "incident traffic is bad against the p95 and p99 thresholds and burns the ratios"])
def test_demo_traffic_model(incident: bool, check: str) -> None:
    import numpy as np

    from streamslo.demo import DemoTraffic

    async def never(beacon: dict[str, Any]) -> int:
        raise AssertionError("not sent")

    demo = DemoTraffic(SPEC.regions, never, seed=7)
    for region in SPEC.regions:
        demo.set_incident(region, incident)
        beacons = [demo.beacon(region, T0) for _ in range(4000)]
        events = [e for b in beacons for e in b["events"]]
        assert max(e["ts"] for e in events) <= T0  # every event happened before sent_at
        attempts = [e for e in events if e["type"] in (c.EVENT_FIRST_FRAME, c.EVENT_EXIT_BEFORE_START) or e.get("fatal")]
        fatal = sum(bool(e.get("fatal")) for e in attempts) / len(attempts)
        exits = sum(e["type"] == c.EVENT_EXIT_BEFORE_START for e in attempts) / len(attempts)
        stalled = sum(e["value_ms"] for e in events if e["type"] == c.EVENT_STALL)
        rebuffering = stalled / (stalled + sum(e["value_ms"] for e in events if e["type"] == c.EVENT_PLAYING))
        assert any(e.get("class") == c.ERROR_CLASS_BUSINESS for e in events)
        for sli, kind in ((c.SLI_TTFF, c.EVENT_FIRST_FRAME), (c.SLI_INTERACTION, c.EVENT_INTERACTION),
                          (c.SLI_LIVE_LATENCY, c.EVENT_LIVE_LATENCY)):
            values = np.array([e["value_ms"] for e in events if e["type"] == kind]) / 1000.0
            for slo in (s for s in SPEC.slos if s.sli == sli):
                assert slo.threshold_s is not None
                bad = float(np.mean(values > slo.threshold_s))
                if check == "healthy":
                    assert bad < slo.budget / 2, (region, slo.name, bad)  # burns at under 0.5x
                elif slo.quantile and slo.quantile >= 0.95:
                    assert bad > 0.95, (region, slo.name, bad)
        for ratio, slo_name in ((fatal, "errors"), (exits, "exits_before_start"), (rebuffering, "rebuffering")):
            budget = SPEC.slo(slo_name).budget
            assert (ratio < budget / 2) if check == "healthy" else (ratio > 3 * budget), (region, slo_name, ratio)


# --- ingest keys of `streamslo run` ---------------------------------------------------

KEY = "k-0123456789"


def _beacon() -> dict[str, Any]:
    now = time.time()
    return {"v": 1, "session_id": "s-keys", "seq": 1, "sent_at": now, "region": "eu-west-1",
            "events": [{"type": "first_frame", "ts": now, "value_ms": 120.0}]}


@pytest.mark.parametrize(("keys", "presented", "status"), [
    pytest.param(frozenset(), None, 202, id="without keys a keyless beacon is taken"),
    pytest.param(frozenset(), "header", 202, id="without keys a production SDK's header key is ignored, not refused"),
    pytest.param(frozenset(), "query", 202, id="without keys a production SDK's ?key= is ignored, not refused"),
    pytest.param(frozenset({KEY}), "header", 202, id="with keys the right header key is taken"),
    pytest.param(frozenset({KEY}), "query", 202, id="with keys the right ?key= is taken"),
    pytest.param(frozenset({KEY}), None, 401, id="with keys a keyless beacon is refused"),
    pytest.param(frozenset({KEY}), "wrong", 401, id="with keys an unknown key is refused"),
])
async def test_embedded_ingest_honours_the_configured_keys(keys: frozenset[str], presented: str | None, status: int) -> None:
    from streamslo.embedded import build_app

    app, _ = build_app(SPEC, keys=keys)
    headers = {"X-Ingest-Key": KEY} if presented == "header" else {"X-Ingest-Key": "k-not-a-key"} if presented == "wrong" else {}
    params = {"key": KEY, "x": "1"} if presented == "query" else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://embedded") as client:
        resp = await client.post("/v1/beacons", params=params, headers={"content-type": "text/plain", **headers},
                                 content=json.dumps(_beacon()))
    assert resp.status_code == status, resp.text
    if status == 401:
        assert resp.json()["field"] == "key"


@pytest.mark.parametrize(("how", "env"), [
    pytest.param("--keys FILE", False, id="streamslo run --keys FILE requires one of the file's keys"),
    pytest.param("STREAMSLO_INGEST_KEYS", True, id="streamslo run takes its keys from STREAMSLO_INGEST_KEYS"),
])
def test_streamslo_run_takes_keys_like_the_collector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, env: bool) -> None:
    command = "streamslo run"
    if env:
        monkeypatch.setenv("STREAMSLO_INGEST_KEYS", f"{KEY},k-other-key-1")
    else:
        (tmp_path / "keys.txt").write_text(f"# dev keys\n{KEY}\n")
        command += f" --keys {tmp_path / 'keys.txt'}"
    with embedded_server(command, tmp_path / "run.log") as base:
        url = f"{base}/v1/beacons"
        assert httpx.post(url, json=_beacon(), params={"key": KEY}).status_code == 202
        assert httpx.post(url, json=_beacon()).status_code == 401
        assert httpx.post(url, json=_beacon(), headers={"X-Ingest-Key": "k-unknown-0"}).status_code == 401
        text = httpx.get(f"{base}/metrics").text
        assert sample(text, c.METRIC_COLLECTOR_REFUSED, reason=c.REASON_UNAUTHORIZED) == 2


def test_streamslo_run_refuses_unusable_keys(tmp_path: Path) -> None:
    (tmp_path / "keys.txt").write_text("short\n")
    proc = subprocess.run([*streamslo_argv("streamslo run"), "--keys", str(tmp_path / "keys.txt")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "shorter than 8 characters" in proc.stderr


async def test_an_exit_before_start_is_accepted_and_counted_as_an_attempt_never_as_an_error() -> None:
    from streamslo.embedded import build_app

    app, _ = build_app(SPEC, flush_interval_s=0.05)
    beacon = _beacon()  # one first_frame ...
    beacon["events"].append({"type": c.EVENT_EXIT_BEFORE_START, "ts": beacon["sent_at"], "value_ms": 900.0})
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://embedded") as client:
        resp = await client.post("/v1/beacons", json=beacon)
        assert resp.status_code == 202, resp.text
        deadline = time.monotonic() + 10
        while True:  # until the engine has flushed the first frame
            text = (await client.get("/metrics")).text
            if sample(text, c.METRIC_ATTEMPTS, region="eu-west-1", kind=c.KIND_RUM) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
    assert sample(text, c.METRIC_COLLECTOR_EVENTS, outcome=c.OUTCOME_ACCEPTED) == 2
    assert sample(text, c.METRIC_ATTEMPTS, region="eu-west-1", kind=c.KIND_RUM) == 2  # the first frame and the exit
    assert sample(text, c.METRIC_EXITS_BEFORE_START, region="eu-west-1", kind=c.KIND_RUM) == 1
    assert sample(text, c.METRIC_ERRORS, region="eu-west-1", kind=c.KIND_RUM) == 0
