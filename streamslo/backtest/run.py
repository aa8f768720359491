"""One backtest: read a replay file, replay it, evaluate it; the CLI and the tests call this.

Use :func:`backtest` for the whole flow without a terminal (tests, the
sweep, the benchmark); ``streamslo backtest`` (``streamslo/backtest/cli.py``)
adds the progress bar and the files.

Example::

    outcome = backtest(spec, "launch.jsonl.gz", eval_interval_s=10.0)
    outcome.result["summary"]["false_pages"]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slo.model import Spec
from slo.stage2 import Stage2
from streamslo.backtest import data
from streamslo.backtest.evaluate import evaluate
from streamslo.backtest.replay import ReplayStats, replay
from streamslo.backtest.timeline import Timeline

__all__ = ["Outcome", "backtest"]


@dataclass
class Outcome:
    """A finished backtest: the header, the per-tick timeline, the replay's figures and the result."""

    header: data.Header
    timeline: Timeline
    stats: ReplayStats
    result: dict[str, Any]


def backtest(
    spec: Spec,
    path: str | Path,
    *,
    incidents: list[data.Incident] | None = None,
    eval_interval_s: float = 10.0,
    flush_interval_s: float = 1.0,
    progress: Callable[[float], None] | None = None,
    on_tick: Callable[[float, Stage2], None] | None = None,
) -> Outcome:
    """Replay ``path`` through ``spec`` and evaluate every tier and trigger; see the module docstring.

    ``incidents`` (a sidecar) replaces the header's; ``on_tick`` sees stage 2
    after the timeline did (the Prometheus series export uses it).
    """
    header, beacons = data.read(path)
    labelled = header.incidents if incidents is None else incidents
    timeline = Timeline(spec, start=header.start)

    def tick(now: float, stage2: Stage2) -> None:
        timeline(now, stage2)
        if on_tick is not None:
            on_tick(now, stage2)

    stats = replay(spec, beacons, start=header.start, end=header.end, eval_interval_s=eval_interval_s,
                   flush_interval_s=flush_interval_s, on_tick=tick, progress=progress)
    timeline.finish()
    result = evaluate(spec, timeline, labelled)
    result["summary"] |= {
        "source": header.source, "start": header.start, "eval_interval_s": eval_interval_s,
        "beacons": stats.beacons, "events": stats.events, "cpu_s": round(stats.cpu_s, 3),
    }
    return Outcome(header, timeline, stats, result)
