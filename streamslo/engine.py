"""The in-process engine: stage 1 and stage 2 driven without Kafka, and the status page's data.

``streamslo run`` hands every beacon the collector accepts to
:meth:`Engine.sink`; a background task (:meth:`Engine.run`) flushes stage 1
into stage 2 every ``flush_interval_s``. These are the very classes the Faust
agents drive (``slo/stage1.py``, ``slo/stage2.py``); only the transport
differs: a running counter stands in for the Kafka offset, so stage 2's
idempotence bookkeeping works unchanged. Everything runs on the event loop's
thread (the collector's handlers and ``/metrics`` are async), so no locks.

When to use: the embedded mode and tests that want the real engine without a
broker. Example::

    engine = Engine(spec)
    exporter = InProcessExporter(engine.sink)
    registry.register(EngineCollector(engine.snapshot, spec))
    asyncio.create_task(engine.run())
    engine.status()          # the JSON the status page renders (streamslo/status/view.py)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from slo.beacon import Beacon
from slo.model import Spec
from slo.stage1 import Stage1, Stage1Stats
from slo.stage2 import Snapshot, Stage2
from streamslo.status.view import StatusView

log = logging.getLogger(__name__)

SOURCE = "embedded"


class Engine:
    """Stage 1 + stage 2 in one process; see the module docstring."""

    def __init__(
        self,
        spec: Spec,
        *,
        flush_interval_s: float = 0.5,
        trend_every_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.stage1 = Stage1(spec)
        self.stage2 = Stage2(spec)
        self.flush_interval_s = flush_interval_s
        self.view = StatusView(spec, trend_every_s=trend_every_s)
        self.clock = clock
        self.offset = 0
        self.flushes = 0
        # The demo's regions with an incident on (the status page marks them); None: no demo.
        self.incidents: Callable[[], set[str]] | None = None
        self._snapshot: Snapshot | None = None
        self._snapshot_flush = -1
        # slo.stream.metrics.StreamCollector reads a worker's runtime through
        # stage1_stats(), partials_lag and stage2; the engine has no partials topic.
        self.partials_lag: dict[int, int] = {}

    # -- the transport ------------------------------------------------------------

    def sink(self, beacon: Beacon) -> None:
        """The in-process exporter's sink: one beacon at the next offset."""
        self.offset += 1
        self.stage1.add(beacon, SOURCE, self.offset)

    def flush(self, now: float | None = None) -> int:
        """Move stage 1's partials into stage 2 and slide the windows; return the partial count."""
        now = self.clock() if now is None else now
        partials = self.stage1.flush(SOURCE, now)
        for partial in partials:
            self.stage2.apply(partial)
        self.stage2.advance(now)
        self.flushes += 1
        if self.view.trend_due(now):
            self.view.record_trend(self.snapshot(now))
        return len(partials)

    def snapshot(self, now: float | None = None) -> Snapshot:
        """Stage 2's view, recomputed at most once per flush (a scrape between flushes reuses it)."""
        if self._snapshot is None or self._snapshot_flush != self.flushes:
            self._snapshot = self.stage2.snapshot(self.clock() if now is None else now)
            self._snapshot_flush = self.flushes
        return self._snapshot

    def lag(self) -> dict[int, int]:
        """Beacons accepted but not yet flushed to stage 2 (the in-process "partition" 0)."""
        pending = self.stage1.pending(SOURCE)
        return {0: pending[1] - pending[0] if pending else 0}

    def stage1_stats(self) -> Stage1Stats:
        """Stage-1 counters and lag, as a stream worker reports them."""
        return Stage1Stats(self.stage1.counters, self.lag())

    async def run(self) -> None:
        """Flush every ``flush_interval_s`` until cancelled; a failing flush is logged, not fatal."""
        while True:
            await asyncio.sleep(self.flush_interval_s)
            try:
                self.flush()
            except Exception:  # keep serving: one bad flush must not stop the engine
                log.exception("engine flush failed")

    def status(self) -> dict[str, Any]:
        """The status page's JSON for the current snapshot (``streamslo/status/view.py``)."""
        return self.view.status(self.snapshot(), self.incidents() if self.incidents is not None else None)
