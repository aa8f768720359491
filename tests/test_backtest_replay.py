"""The replay is the embedded engine on the data's clock; promrate is Prometheus' rate(); labels from a sidecar."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from slo.spec import load_spec
from slo.stage2 import Snapshot, Stage2
from streamslo.backtest import data
from streamslo.backtest.promrate import increase
from streamslo.backtest.replay import replay
from streamslo.backtest.run import backtest
from streamslo.backtest.scenario import load_scenario
from streamslo.backtest.simulate import write
from streamslo.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec(ROOT / "tests" / "specs" / "short.yaml")[0]


def _view(snap: Snapshot) -> dict[str, object]:
    """Everything a scrape shows of a snapshot: totals, window quantiles and events, burns, triggers."""
    out: dict[str, object] = {}
    for name, region in snap.regions.items():
        for key, s in region.series.items():
            out[f"{name} {key}"] = (s.count, s.le_counts, s.attempts, s.errors, s.quantiles, s.window_events)
        for slo, v in region.slos.items():
            out[f"{name} {slo}"] = (v.burn_rates, v.budget_remaining, v.tiers)
        out[f"{name} triggers"] = region.triggers
    return out


def test_the_replay_sees_what_the_embedded_engine_shows_at_every_tick(tmp_path: Path) -> None:
    """Same beacons, same flush instants: the engine's snapshot equals the replay's at every tick."""
    path = tmp_path / "outage.jsonl.gz"
    write(load_scenario("regional-outage", hours=0.25), path, seed=41)
    header, beacons = data.read(path)
    seen: list[tuple[float, dict[str, object]]] = []
    replay(SPEC, beacons, start=header.start, end=header.end, eval_interval_s=5.0, flush_interval_s=1.0,
           on_tick=lambda now, stage2: seen.append((now, _view(stage2.snapshot(now)))))

    engine = Engine(SPEC)
    ticks = dict(seen)
    flush_at = header.start
    got: list[tuple[float, dict[str, object]]] = []

    def flush_until(t: float) -> None:
        nonlocal flush_at
        while flush_at <= t:
            engine.flush(flush_at)
            if flush_at in ticks:
                got.append((flush_at, _view(engine.stage2.snapshot(flush_at))))
            flush_at += 1.0

    for b in data.read(path)[1]:
        flush_until(b.received_at)
        engine.sink(b)
    flush_until(max(seen)[0])
    assert len(seen) > 100
    assert got == seen


INCREASE = [
    pytest.param([0, 10, 20, 30, 40], 2.0, [None, 10.0, 20.0, 20.0, 20.0],
                 id="a full window is the difference of its first and last samples"),
    pytest.param([5, 10, 15, 20, 25], 10.0, [None, 10.0, 15.0, 20.0, 25.0],
                 id="a counter seen from 5 extrapolates back to zero at most"),
    pytest.param([100, 110, 120, 130, 140], 10.0, [None, 15.0, 25.0, 35.0, 45.0],
                 id="a young series far from zero extrapolates half an interval back"),
    pytest.param([None, None, 0, 0, 4], 2.0, [None, None, None, 0.0, 4.0],
                 id="samples before the series appeared do not count"),
]


@pytest.mark.parametrize(("values", "window", "expected"), INCREASE)
def test_increase_extrapolates_like_prometheus(values: list[float | None], window: float,
                                              expected: list[float | None]) -> None:
    t = np.arange(len(values), dtype=np.float64)
    got = increase(t, np.array([np.nan if v is None else v for v in values], dtype=np.float64), window)
    assert [None if np.isnan(v) else round(float(v), 9) for v in got] == expected


def test_a_sidecar_replaces_the_files_incidents(tmp_path: Path) -> None:
    path = tmp_path / "outage.jsonl.gz"
    header = write(load_scenario("regional-outage", hours=0.5), path, seed=42)
    inc = header.incidents[0]
    side = tmp_path / "labels.json"
    side.write_text(json.dumps({"incidents": [
        {"name": "relabelled", "region": "eu-west-1", "start_s": inc.start_s, "end_s": inc.end_s},
        {"name": "nothing-happened", "region": "us-east-1", "start_s": 60, "end_s": 120}]}))
    result = backtest(SPEC, path, incidents=data.load_incidents(side), eval_interval_s=5.0).result
    assert {r["name"]: r["detected"] for r in result["incidents"]} == {"relabelled": True, "nothing-happened": False}
    assert result["summary"]["missed"] == ["nothing-happened"]
    assert {a["incident"] for a in result["alerts"]} == {"relabelled"}


def test_an_unlabelled_sidecar_is_refused_with_the_field(tmp_path: Path) -> None:
    side = tmp_path / "labels.json"
    side.write_text(json.dumps({"incidents": [{"region": "eu-west-1", "start_s": 1, "end_s": 2}]}))
    with pytest.raises(ValueError, match=r"incidents\[0\]: KeyError\('name'\)"):
        data.load_incidents(side)


def test_stage2_is_the_engines_class() -> None:
    # The backtest imports no copy of the engine: the replay's stage 2 is slo.stage2.Stage2.
    seen: list[object] = []
    replay(SPEC, [], start=0.0, end=1.0, eval_interval_s=1.0, on_tick=lambda now, s2: seen.append(type(s2)))
    assert seen and all(t is Stage2 for t in seen)
