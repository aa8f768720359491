"""Replay beacons through the real stage 1 and stage 2 on a simulated clock, at event time.

Use :func:`replay` to drive ``slo/stage1.py`` and ``slo/stage2.py`` exactly as
the embedded engine does (``streamslo/engine.py``: each beacon added at the
next offset of one in-process source, stage 1 flushed into stage 2 every
``flush_interval_s``), except that the clock is the data's own: a beacon is
added when the simulated clock reaches its ``received_at``, the flushes
happen at the simulated instants, and nothing sleeps. Every
``eval_interval_s`` (Prometheus' evaluation interval) the callback
``on_tick(now, stage2)`` sees stage 2 as a scrape at that instant would.

Ticks are aligned to the data's start: ``start + k x eval_interval_s``; the
last tick is at or after ``end``.

Example::

    header, beacons = data.read(path)
    stats = replay(spec, beacons, start=header.start, end=header.end,
                   on_tick=lambda now, stage2: print(now, stage2.snapshot(now).regions.keys()))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from slo.beacon import Beacon
from slo.model import Spec
from slo.stage1 import Stage1
from slo.stage2 import Stage2

__all__ = ["ReplayStats", "replay"]

SOURCE = "backtest"  # the one in-process source, as the engine's "embedded"

OnTick = Callable[[float, Stage2], None]
Progress = Callable[[float], None]


@dataclass
class ReplayStats:
    """What a replay went through: beacons, events, flushes and evaluation ticks, and the CPU time."""

    beacons: int = 0
    events: int = 0
    flushes: int = 0
    ticks: int = 0
    first_received: float | None = None
    last_received: float | None = None
    cpu_s: float = 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.cpu_s if self.cpu_s > 0 else 0.0


def replay(
    spec: Spec,
    beacons: Iterable[Beacon],
    *,
    start: float,
    end: float | None = None,
    eval_interval_s: float = 10.0,
    flush_interval_s: float = 1.0,
    on_tick: OnTick | None = None,
    progress: Progress | None = None,
) -> ReplayStats:
    """Run ``beacons`` (in arrival order) through stage 1 and stage 2; see the module docstring.

    ``progress(now)`` is called about once per simulated minute.
    """
    if eval_interval_s <= 0 or flush_interval_s <= 0:
        raise ValueError("eval_interval_s and flush_interval_s must be > 0")
    stage1, stage2 = Stage1(spec), Stage2(spec)
    stats = ReplayStats()
    clock = _Clock(start, eval_interval_s, flush_interval_s)
    cpu0 = time.process_time()
    for offset, beacon in enumerate(beacons, start=1):
        received = beacon.received_at
        if received >= clock.next_event:
            clock.run_until(received, stage1, stage2, stats, on_tick, progress)
        stage1.add(beacon, SOURCE, offset)
        stats.beacons += 1
        stats.events += len(beacon.events)
        if stats.first_received is None:
            stats.first_received = received
        stats.last_received = received
    last = max(end or start, stats.last_received or start)
    # Run through the tick at (or just after) the end, so the last data is evaluated.
    clock.run_until(last + eval_interval_s - 1e-9, stage1, stage2, stats, on_tick, progress)
    stats.cpu_s = time.process_time() - cpu0
    return stats


class _Clock:
    """The simulated clock: the next flush instant and the next evaluation tick."""

    def __init__(self, start: float, eval_s: float, flush_s: float) -> None:
        self.start, self.eval_s, self.flush_s = start, eval_s, flush_s
        self.k_flush = self.k_tick = 0
        self.next_progress = start

    @property
    def next_flush(self) -> float:
        return self.start + self.k_flush * self.flush_s

    @property
    def next_tick(self) -> float:
        return self.start + self.k_tick * self.eval_s

    @property
    def next_event(self) -> float:
        return min(self.next_flush, self.next_tick)

    def run_until(
        self, t: float, stage1: Stage1, stage2: Stage2, stats: ReplayStats,
        on_tick: OnTick | None, progress: Progress | None,
    ) -> None:
        """Flush and evaluate at every instant up to ``t`` (a beacon received at ``t`` comes after them)."""
        while True:
            now = self.next_event
            if now > t:
                return
            if now == self.next_flush:
                for partial in stage1.flush(SOURCE, now):
                    stage2.apply(partial)
                stage2.advance(now)
                stats.flushes += 1
                self.k_flush += 1
            if now == self.next_tick:
                if on_tick is not None:
                    on_tick(now, stage2)
                stats.ticks += 1
                self.k_tick += 1
            if progress is not None and now >= self.next_progress:
                progress(now)
                self.next_progress = now + 60.0
