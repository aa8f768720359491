"""Backtest replay speed: how long would a day of traffic at 2,000 events/s take on one core?

Simulates ``--minutes`` of traffic at ``--rate`` events/s over the default
spec's four regions (half play attempts, half interactions, 8 events per
beacon), writes it as a replay file, then measures, one after the other in
this process (one thread; CPU time, ``time.process_time``):

- ``decode``: reading and decoding the file only (the floor of any replay);
- ``replay``: decode + stage 1 + stage 2 on the simulated clock, flushed every
  second, evaluated every 10 s (the timeline: tiers' counters, triggers,
  health, quantiles);
- ``backtest``: the whole ``streamslo backtest`` flow (replay + the tiers'
  Prometheus evaluation, alerts, failover, HPA model), without the report.

The day figure extrapolates the measured span linearly (events and ticks
both grow with time at a constant rate); stage 2's longest windows (3 d)
hold more panes after a day than after minutes, which this does not
measure. Prints a table and ends with
``RESULT events_per_s=X day_at_2000eps_minutes=X``.

    python bench/bench_backtest.py [--minutes 10] [--rate 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from slo.spec import load_spec
from streamslo.backtest import data
from streamslo.backtest.replay import replay
from streamslo.backtest.run import backtest
from streamslo.backtest.scenario import parse_scenario
from streamslo.backtest.simulate import write
from streamslo.backtest.timeline import Timeline

DAY_EVENTS_AT_2000 = 2000 * 86_400


def _cpu(fn):  # type: ignore[no-untyped-def]
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=2000.0, help="events per second, all regions")
    args = p.parse_args()
    spec = load_spec()[0]
    regions = list(spec.regions)
    scenario = parse_scenario({
        "hours": args.minutes / 60, "regions": regions, "attempts_per_s": args.rate / len(regions) / 2,
        "interactions_per_attempt": 1.0, "events_per_beacon": 8,
        "effects": [{"name": "outage", "region": regions[0], "start": "50%", "end": "70%", "error_ratio": 1.0}],
    }, "bench")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.jsonl.gz"
        sim_s, _ = _cpu(lambda: write(scenario, path, seed=1))
        header = data.read_header(path)
        dec_s, n_events = _cpu(lambda: sum(len(b.events) for b in data.read(path)[1]))

        def replay_only() -> int:
            tl = Timeline(spec, start=header.start)
            return replay(spec, data.read(path)[1], start=header.start, end=header.end, on_tick=tl).ticks

        rep_s, ticks = _cpu(replay_only)
        bt_s, outcome = _cpu(lambda: backtest(spec, path))
        size = path.stat().st_size
    rows = [("simulate (write)", sim_s), ("decode", dec_s), ("replay", rep_s), ("backtest", bt_s)]
    print(f"{n_events} events ({args.minutes:g} min at {args.rate:g}/s, {len(regions)} regions), "
          f"{ticks} evaluation ticks, file {size / 1e6:.1f} MB; CPU seconds, one thread")
    print(f"{'step':<18} {'cpu s':>8} {'events/s':>12} {'x decode':>9}")
    for name, secs in rows:
        print(f"{name:<18} {secs:8.2f} {n_events / secs:12.0f} {secs / dec_s:9.2f}")
    eps = n_events / bt_s
    day_min = DAY_EVENTS_AT_2000 / eps / 60
    print(f"a day at 2000 events/s ({DAY_EVENTS_AT_2000 / 1e6:.0f} M events), extrapolated: {day_min:.1f} min "
          f"(target <= 10); alerts fired: {len(outcome.result['alerts'])}")
    print(f"RESULT events_per_s={eps:.0f} day_at_2000eps_minutes={day_min:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
