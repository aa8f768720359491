"""Stage 1 in its own process, next to the Faust process that runs stage 2 and /metrics.

Why: in the Faust process stage 1 shares one interpreter (and the GIL) with
Faust's consumer thread, agents and web server, and ran at about a third of
the raw-consumer baseline; alone it runs at about half (``docs/benchmarks.md``).
The child is started by the worker, dies with it (``PR_SET_PDEATHSIG``, so a
``kill -9`` of the worker never leaves an orphan consuming partitions) and
sends its counters and lag to the parent every ``REPORT_S`` over a pipe.

Example::

    child = Stage1Process(settings).start()
    child.poll()            # latest Stage1Stats, non-blocking
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import logging
import multiprocessing as mp
import signal
from multiprocessing.connection import Connection
from typing import Any

from slo.stage1 import Stage1, Stage1Stats
from slo.stream.settings import Settings

REPORT_S = 0.25
_PR_SET_PDEATHSIG = 1


class Stage1Process:
    """Owns the stage-1 child process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stats = Stage1Stats()
        self._conn: Connection | None = None
        self._proc: Any = None

    def start(self) -> Stage1Process:
        ctx = mp.get_context("spawn")  # never fork a process that runs an event loop
        parent, child = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_child_main, args=(self.settings, child),
                                 name="streamslo-stage1", daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        return self

    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def exitcode(self) -> int | None:
        """The child's exit code (negative: killed by that signal); None while it runs."""
        return None if self._proc is None else self._proc.exitcode

    def poll(self) -> Stage1Stats:
        """Drain pending reports; return the latest."""
        if self._conn is not None:
            with contextlib.suppress(EOFError, OSError):
                while self._conn.poll():
                    self.stats = self._conn.recv()
        return self.stats

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)


def _child_main(settings: Settings, conn: Connection) -> None:
    with contextlib.suppress(OSError, AttributeError):
        # Linux: SIGKILL this process when the worker (its parent) dies.
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    logging.basicConfig(level=logging.INFO,
                        format="[%(asctime)s] [stage1] [%(levelname)s] %(message)s")
    asyncio.run(_child(settings, conn))


async def _child(settings: Settings, conn: Connection) -> None:
    from slo.stream.stage1_runner import Stage1Runner

    runner = Stage1Runner(settings, Stage1(settings.spec, dedup_records=settings.dedup_records))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, runner.stop)

    async def report() -> None:
        while True:
            stats = Stage1Stats(dataclasses.replace(runner.stage1.counters), runner.lag(),
                                runner.failed_cuts)
            try:
                conn.send(stats)
            except (BrokenPipeError, OSError):
                runner.stop()
                return
            await asyncio.sleep(REPORT_S)

    reporter = asyncio.create_task(report())
    try:
        await runner.run()
    finally:
        reporter.cancel()
