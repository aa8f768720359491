"""Rolling windows plus cumulative totals for one (region, sli, kind) series.

Stage 2 (``slo/stage2.py``) keeps one :class:`Series` per region, SLI and kind.
A series holds one :class:`slo.rolling.Window` for every rolling window of the
spec (``Spec.stream_windows_s`` plus the budget period); sketches only for
``Spec.quantile_windows_s``. Panes, pane widths, time and lateness of one
window: ``slo/rolling.py``.

Cumulative totals (the Prometheus counters) take every partial, late for some
window or not, so totals stay exact.

Example::

    series = Series(spec, "ttff", "rum")
    series.apply(partial)            # True when every window took it
    series.advance(now)              # expire panes that left each window
    series.window(60.0).quantiles([0.95])
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import numpy.typing as npt

from slo import conventions as c
from slo.model import Spec
from slo.partial import Partial
from slo.rolling import ATTEMPTS, COUNT, ERRORS, FIRST_EDGE, Window, WindowState, pane_width
from slo.sketch import LogSketch

__all__ = ["Series", "SeriesState"]


class SeriesState(msgspec.Struct, array_like=True):
    """Serialized :class:`Series`."""

    count: int
    sum_s: float
    le_counts: list[int]
    attempts: int
    errors: int
    stage1_late: int
    max_event_time: float
    max_received_at: float
    windows: list[WindowState]


class Series:
    """Rolling windows plus cumulative totals for one (region, sli, kind).

    Cumulative totals (count, sum, ``le_counts``, attempts, errors) only grow:
    they back the Prometheus histogram and counters.
    """

    def __init__(self, spec: Spec, sli: str, kind: str) -> None:
        self.sli = sli
        self.kind = kind
        self.is_latency = sli != c.SLI_ERRORS
        self.edges: tuple[float, ...] = spec.histogram_buckets_s if self.is_latency else ()
        n_fields = FIRST_EDGE + len(self.edges)
        quantile_windows = set(spec.quantile_windows_s)
        self.windows: dict[float, Window] = {}
        for window_s in sorted({*spec.stream_windows_s, spec.period_s}):
            width = pane_width(window_s, spec.pane_s)
            sketched = self.is_latency and window_s in quantile_windows
            self.windows[window_s] = Window(window_s, width, n_fields, sketched)
        self.count = 0
        self.sum_s = 0.0
        self.le_counts: npt.NDArray[np.int64] = np.zeros(len(self.edges), dtype=np.int64)
        self.attempts = 0
        self.errors = 0
        self.stage1_late = 0
        self.max_event_time = 0.0
        self.max_received_at = 0.0

    def check(self, partial: Partial) -> str | None:
        """Why ``partial`` cannot be applied to this series, or None when it can."""
        if self.is_latency and len(partial.le_counts) != len(self.edges):
            return f"le_counts has {len(partial.le_counts)} edges, want {len(self.edges)}"
        if min(partial.count, partial.attempts, partial.errors, partial.late) < 0:
            return "negative count"
        if not math.isfinite(partial.pane_start):
            return "pane_start is not finite"
        return None

    def apply(self, partial: Partial) -> bool:
        """Add ``partial`` to the totals and every window still covering its pane.

        Returns False when at least one window had already passed the pane (late).
        The caller must have checked the partial with :meth:`check`.
        """
        fields = np.zeros(FIRST_EDGE + len(self.edges), dtype=np.int64)
        fields[COUNT] = partial.count
        fields[ATTEMPTS] = partial.attempts
        fields[ERRORS] = partial.errors
        if self.edges:
            fields[FIRST_EDGE:] = partial.le_counts
            np.add(self.le_counts, fields[FIRST_EDGE:], out=self.le_counts)
        self.count += partial.count
        self.sum_s += partial.sum_s
        self.attempts += partial.attempts
        self.errors += partial.errors
        self.stage1_late += partial.late
        self.max_event_time = max(self.max_event_time, partial.max_event_time)
        self.max_received_at = max(self.max_received_at, partial.max_received_at)
        sketch = LogSketch.from_bytes(partial.sketch) if partial.sketch else None
        on_time = True
        for window in self.windows.values():
            applied = window.add(
                partial.pane_start, fields, partial.sum_s, partial.min_s, partial.max_s, sketch
            )
            on_time = on_time and applied
        return on_time

    def advance(self, now: float) -> None:
        for window in self.windows.values():
            window.advance(now)

    def window(self, window_s: float) -> Window:
        return self.windows[window_s]

    @property
    def nbytes(self) -> int:
        """Bytes held by all windows and totals of this series."""
        return sum(w.nbytes for w in self.windows.values()) + self.le_counts.nbytes

    def state(self) -> SeriesState:
        return SeriesState(
            count=self.count,
            sum_s=self.sum_s,
            le_counts=[int(v) for v in self.le_counts],
            attempts=self.attempts,
            errors=self.errors,
            stage1_late=self.stage1_late,
            max_event_time=self.max_event_time,
            max_received_at=self.max_received_at,
            windows=[w.state() for w in self.windows.values()],
        )

    def load(self, state: SeriesState) -> None:
        """Replace this series' content by ``state`` (built from the same spec)."""
        if len(state.windows) != len(self.windows) or len(state.le_counts) != len(self.edges):
            raise ValueError("series state does not match the spec's windows or buckets")
        self.count = state.count
        self.sum_s = state.sum_s
        self.le_counts = np.array(state.le_counts, dtype=np.int64)
        self.attempts = state.attempts
        self.errors = state.errors
        self.stage1_late = state.stage1_late
        self.max_event_time = state.max_event_time
        self.max_received_at = state.max_received_at
        for window, window_state in zip(self.windows.values(), state.windows, strict=True):
            window.load(window_state)
