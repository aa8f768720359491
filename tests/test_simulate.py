"""``streamslo simulate``: seeded, reproducible traffic whose incidents are where the labels say."""

from __future__ import annotations

import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from slo import conventions as c
from slo.beacon import Beacon
from streamslo.backtest import data
from streamslo.backtest.scenario import BUILTIN, load_scenario, parse_scenario
from streamslo.backtest.simulate import DEFAULT_START, simulate, write


def _events(beacons: list[Beacon], region: str, lo: float, hi: float) -> tuple[int, int, list[float]]:
    """(attempts, fatal errors, first-frame ms) of ``region`` with event times in [lo, hi) seconds."""
    attempts = errors = 0
    ttff: list[float] = []
    for b in beacons:
        if b.region != region:
            continue
        for e in b.events:
            if not lo <= e.t - DEFAULT_START < hi:
                continue
            if e.type == c.EVENT_ERROR:
                attempts += 1
                errors += 1
            elif e.type == c.EVENT_FIRST_FRAME:
                attempts += 1
                ttff.append(e.value_ms or 0.0)
    return attempts, errors, ttff


def test_the_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    scenario = load_scenario("flapping", hours=0.1)
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        write(scenario, tmp_path / f"{name}.gz", seed=seed)
    a, b, other = ((tmp_path / f"{n}.gz").read_bytes() for n in "abc")
    assert a == b
    assert a != other


def test_the_file_carries_its_incidents_and_its_beacons_in_arrival_order(tmp_path: Path) -> None:
    path = tmp_path / "outage.jsonl.gz"
    header = write(load_scenario("regional-outage", hours=1), path, seed=4)
    read_header, beacons = data.read(path)
    assert read_header == header
    assert [(i.name, i.region, i.start_s, i.end_s) for i in header.incidents] == [
        ("outage", "eu-west-1", 1440.0, 3240.0)]
    received = [b.received_at for b in beacons]
    assert received == sorted(received) and len(received) > 1000


def test_an_outage_fails_every_attempt_of_its_region_inside_its_window_only() -> None:
    beacons, incidents = simulate(load_scenario("regional-outage", hours=1), seed=5)
    inc = incidents[0]
    inside = _events(beacons, "eu-west-1", inc.start_s, inc.end_s)
    before = _events(beacons, "eu-west-1", 0, inc.start_s)
    calm = _events(beacons, "us-east-1", inc.start_s, inc.end_s)
    assert inside[0] > 10_000 and inside[1] == inside[0]
    assert before[1] / before[0] < 0.01
    assert calm[1] / calm[0] < 0.01


def test_a_regression_pushes_one_regions_p95_and_p99_above_the_objectives() -> None:
    beacons, incidents = simulate(load_scenario("regional-regression", hours=1), seed=6)
    inc = incidents[0]
    late = (inc.end_s - 300, inc.end_s)  # the ramp is over: the full 2.2x
    slow = np.array(_events(beacons, "eu-west-1", *late)[2])
    calm = np.array(_events(beacons, "us-east-1", *late)[2])
    assert np.percentile(slow, 95) > 200 and np.percentile(slow, 99) > 300
    assert np.percentile(calm, 95) < 200 and np.percentile(calm, 99) < 300


def test_a_launch_multiplies_the_traffic_of_every_region() -> None:
    scenario = load_scenario("launch-spike", hours=1)
    beacons, incidents = simulate(scenario, seed=7)
    launch = next(e for e in scenario.effects if e.name == "launch")
    for region in scenario.regions:
        during = _events(beacons, region, launch.start_s + 300, launch.end_s)[0] / (launch.end_s - launch.start_s - 300)
        before = _events(beacons, region, 0, launch.start_s)[0] / launch.start_s
        assert 4.5 < during / before < 5.5
    assert [i.name for i in incidents] == ["overload"]  # the extra traffic itself is not an incident


def test_flapping_labels_every_degraded_phase_as_its_own_incident() -> None:
    incidents = simulate(load_scenario("flapping", hours=2), seed=8)[1]
    assert [i.name for i in incidents] == [f"flap-{k}" for k in range(1, 9)]
    starts = [i.start_s for i in incidents]
    assert all(b - a == 360 for a, b in pairwise(starts))


def test_diurnal_traffic_peaks_six_hours_in_and_is_lowest_at_eighteen() -> None:
    scenario = parse_scenario({**BUILTIN["diurnal"], "attempts_per_s": 2}, "diurnal")
    beacons, _ = simulate(scenario, seed=9)
    peak = _events(beacons, "us-east-1", 5.5 * 3600, 6.5 * 3600)[0]
    low = _events(beacons, "us-east-1", 17.5 * 3600, 18.5 * 3600)[0]
    assert peak > 3 * low


BAD = [
    pytest.param({"hours": 1, "colour": "red"}, "unknown field(s) ['colour']", id="an unknown field is refused by name"),
    pytest.param({"effects": [{"start": "soon"}]}, "effects[0].start", id="a start that is not a time names the effect"),
    pytest.param({"effects": [{"start": "50%", "end": "10%"}]}, "effects[0]: end must be after start",
                 id="an effect ending before it starts is refused"),
    pytest.param({"effects": [{"start": 0, "end": 9, "strength": 2}]}, "effects[0]: unknown field(s) ['strength']",
                 id="an unknown effect field is refused by name"),
    pytest.param({"hours": 0}, "hours must be > 0", id="a scenario without length is refused"),
]


@pytest.mark.parametrize(("doc", "message"), BAD)
def test_a_bad_scenario_is_refused_with_the_field_named(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
                       .replace(")", r"\)")):
        parse_scenario(doc, "bad")


def test_the_cli_writes_a_scenario_file_of_your_own(tmp_path: Path) -> None:
    scenario = tmp_path / "mine.yaml"
    scenario.write_text(
        "hours: 0.05\nregions: [sa-east-1]\nattempts_per_s: 5\n"
        "effects:\n  - {name: blip, region: sa-east-1, start: 50%, end: 50% + 30s, error_ratio: 1.0}\n"
    )
    out = tmp_path / "mine.jsonl.gz"
    run = subprocess.run([sys.executable, "-m", "streamslo.cli", "simulate", "--scenario", str(scenario),
                          "--seed", "3", "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "incident blip: sa-east-1 from 90s to 120s" in run.stdout
    header, beacons = data.read(out)
    assert header.source == "simulate:mine" and {b.region for b in beacons} == {"sa-east-1"}


def test_the_cli_refuses_an_unknown_scenario_name() -> None:
    run = subprocess.run([sys.executable, "-m", "streamslo.cli", "simulate", "--scenario", "no-such",
                          "--out", "/dev/null"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "unknown scenario 'no-such'" in run.stderr
