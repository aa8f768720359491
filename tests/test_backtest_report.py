"""``streamslo backtest`` end to end: the JSON result, failover and scaling, the HTML report in Chromium.

One short launch-spike (overload in eu-west-1) is simulated and backtested
through the CLI with the short-window spec; the report is opened in headless
Debian Chromium and a screenshot saved to ``test-artifacts/backtest/``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from alerts import route53
from slo.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "tests" / "specs" / "short.yaml"
SPEC = load_spec(SPEC_PATH)[0]
ARTIFACTS = ROOT / "test-artifacts" / "backtest"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamslo.cli", *argv], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    tmp = tmp_path_factory.mktemp("backtest-cli")
    sim = _cli("simulate", "--scenario", "launch-spike", "--hours", "0.5", "--seed", "21",
               "--out", str(tmp / "launch.jsonl.gz"))
    assert sim.returncode == 0, sim.stderr
    bt = _cli("backtest", "--spec", str(SPEC_PATH), "--data", str(tmp / "launch.jsonl.gz"), "--eval-interval", "1s",
              "--json", str(tmp / "result.json"), "--report", str(tmp / "report"))
    assert bt.returncode == 0, bt.stderr
    return tmp, json.loads((tmp / "result.json").read_text()), bt.stdout


def test_the_json_lists_every_alert_with_times_from_the_start_of_the_data(run: tuple[Path, dict[str, Any], str]) -> None:
    _, result, _ = run
    assert set(result) >= {"alerts", "triggers", "incidents", "summary", "failover", "scaling"}
    assert result["alerts"], "the overload burns the latency budgets"
    for alert in result["alerts"]:
        assert set(alert) >= {"name", "slo", "tier", "region", "fired_at", "resolved_at", "incident",
                              "detection_delay_s"}
        assert 0 <= alert["fired_at"] <= 1800
        assert alert["region"] == "eu-west-1" and alert["incident"] == "overload"
    inc = result["incidents"][0]
    assert inc["name"] == "overload" and inc["detected"] and inc["first_detection_s"] > 0
    assert result["summary"]["false_pages"] == 0 and result["summary"]["incidents"] == 1


def test_the_terminal_table_names_each_alert_and_the_incident(run: tuple[Path, dict[str, Any], str]) -> None:
    _, result, stdout = run
    assert "StreamSLOScaleOut" in stdout and "incident overload (eu-west-1" in stdout
    assert f"{result['summary']['false_pages']} false pages" in stdout


def test_traffic_moves_after_the_failover_breach_and_the_route53_threshold(run: tuple[Path, dict[str, Any], str]) -> None:
    _, result, _ = run
    trigger = next(t for t in SPEC.triggers if t.name == "failover")
    breach = next(a for a in result["triggers"] if a["trigger"] == "failover" and a["region"] == "eu-west-1")
    (move,) = [f for f in result["failover"] if f["region"] == "eu-west-1"]
    threshold = route53.failure_threshold(trigger.for_s)
    # Health checks every 10 s: the first one at or after the breach, then threshold - 1 more.
    assert 0 <= move["moved_at"] - breach["fired_at"] < threshold * route53.REQUEST_INTERVAL_S
    assert move["back_at"] is not None and move["back_at"] >= breach["resolved_at"]
    assert not [f for f in result["failover"] if f["region"] != "eu-west-1"]


def test_the_hpa_model_scales_the_overloaded_region_only_after_for(run: tuple[Path, dict[str, Any], str]) -> None:
    _, result, _ = run
    rows = {r["region"]: r for r in result["scaling"]}
    assert rows["us-east-1"]["peak"] == 2 and rows["us-east-1"]["first_scale_up_s"] is None
    hot = rows["eu-west-1"]
    condition = next(a for a in result["triggers"] if a["trigger"] == "scale_out" and a["region"] == "eu-west-1")
    # The held ratio needs `for:` of samples above the limit; the HPA syncs every 15 s.
    assert condition["fired_at"] <= hot["first_scale_up_s"] < condition["fired_at"] + 15
    assert hot["peak"] > 2
    assert hot["replicas"][-1][1] < hot["peak"], "scaled back down after the launch"


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/install-deps.sh)")
def test_the_html_report_renders_its_plots_in_headless_chromium(run: tuple[Path, dict[str, Any], str]) -> None:
    tmp, _, _ = run
    page = (tmp / "report" / "index.html").as_uri()
    flags = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-dev-shm-usage", "--window-size=1000,2600"]
    dom = subprocess.run([*flags, f"--user-data-dir={tmp / 'p1'}", "--dump-dom", page],
                         capture_output=True, text=True, timeout=90)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") >= 2 * len(SPEC.regions) + 2
    assert "burn rate (long window) per tier" in dom.stdout and "replicas (HPA model" in dom.stdout
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    run_shot = subprocess.run([*flags, f"--user-data-dir={tmp / 'p2'}", f"--screenshot={shot}", page],
                              capture_output=True, text=True, timeout=90)
    assert run_shot.returncode == 0, run_shot.stderr[-2000:]
    assert shot.stat().st_size > 20_000


def _gz(path: Path, text: str) -> Path:
    import gzip

    with gzip.open(path, "wt") as f:
        f.write(text)
    return path


REFUSALS = [
    pytest.param(["--data", "/no/such/file.jsonl.gz"], "No such file", id="a missing data file is named"),
    pytest.param(["--eval-interval", "soon"], "not a duration: 'soon'", id="a bad evaluation interval is named"),
    pytest.param(["--sweep", "nope", "--threshold", "1"], "no trigger 'nope'", id="a sweep of an unknown trigger"),
    pytest.param(["--sweep", "errors:never", "--factor", "2"], "has no tier 'never'", id="a sweep of an unknown tier"),
    pytest.param(["--sweep", "scale_out"], "--sweep needs --threshold", id="a trigger sweep without thresholds"),
]


@pytest.mark.parametrize(("extra", "message"), REFUSALS)
def test_bad_arguments_exit_2_with_a_message(run: tuple[Path, dict[str, Any], str], extra: list[str],
                                             message: str) -> None:
    tmp, _, _ = run
    argv = ["backtest", "--spec", str(SPEC_PATH), "--data", str(tmp / "launch.jsonl.gz"), *extra]
    done = _cli(*argv)
    assert done.returncode == 2 and message in done.stderr, done.stderr


BAD_FILES = [
    pytest.param('{"a": 1}\n', "not a streamslo replay file", id="a file without the header is refused"),
    pytest.param('{"streamslo_replay": 1, "start": 0, "source": "x"}\n{"session_id": 1}\n', "line 2: not a beacon",
                 id="a line that is not a beacon is refused by line number"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_a_bad_replay_file_exits_2_naming_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = _gz(tmp_path / "bad.jsonl.gz", text)
    done = _cli("backtest", "--spec", str(SPEC_PATH), "--data", str(path))
    assert done.returncode == 2 and message in done.stderr, done.stderr
