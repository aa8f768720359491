"""One rolling window over event-time panes: a ring of panes and running sums over them.

Use :class:`Window` through :class:`slo.windows.Series`, which keeps one per
rolling window of the spec. Adding a partial adds to its pane and to the
running sums; sliding the window subtracts each pane as it expires. Counts are
integers, so the sums stay exact forever.

Pane width grows with the window (about 60 panes per window, a multiple of the
spec's pane, :func:`pane_width`), so a window's edges are exact to one pane of
that window: the 1m window slides by 2 s, the 3d window by 72 min. A window
keeps a sketch (for quantiles) only when asked; min/max are kept per pane.

Time: a window's head is the newest of ``advance(now)`` and the newest pane
it was given, so event time drives the windows (the collector, and stage 1 again,
bound how far in the future an event may be). Defence in depth: once a window
has seen ``advance(now)``, no pane later than ``now + limits.MAX_FUTURE_S`` moves
its head (:meth:`Window.add` refuses it), and a head already beyond that (a
poisoned state loaded from a changelog) is reset by the next ``advance``.

Lateness: a window applies a partial only while the partial's pane is still
inside it; a partial whose pane has already left the window is *late* for it
(counted, not applied).

Example::

    window = Window(60.0, pane_width(60.0, 2.0), FIRST_EDGE + len(edges), with_sketch=True)
    window.add(pane_start, fields, sum_s, min_s, max_s, sketch)   # False when late
    window.advance(now)
    window.quantiles([0.95])
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from slo import limits
from slo.sketch import RELATIVE_ACCURACY, LogSketch

__all__ = ["ATTEMPTS", "COUNT", "ERRORS", "FIRST_EDGE", "Window", "WindowState", "pane_width"]

# Column layout of the per-pane counter matrix: three scalars, then either one
# cumulative ``<= edge`` count per histogram bucket edge (latency series) or the
# extra counters of a series without edges (``slo/windows.py`` names them).
COUNT, ATTEMPTS, ERRORS, FIRST_EDGE = 0, 1, 2, 3
TARGET_PANES = 60
# Guards floor(t / width) against float noise (pane starts are multiples of the pane).
_EPS = 1e-9


def pane_width(window_s: float, base_pane_s: float, target: int = TARGET_PANES) -> float:
    """Pane width for ``window_s``: a multiple of ``base_pane_s`` giving about ``target`` panes.

    The width divides the window when it can, so the window is a whole number of
    panes (``pane_width(300, 2) == 4.0``; ``pane_width(259200, 2) == 4320.0``).
    """
    k = max(1, math.floor(window_s / (target * base_pane_s)))
    for m in range(k, 0, -1):
        width = m * base_pane_s
        ratio = window_s / width
        if abs(ratio - round(ratio)) < 1e-9:
            return width
    return base_pane_s


class WindowState(msgspec.Struct, array_like=True):
    """Serialized :class:`Window` (running sums are rebuilt on load)."""

    head: int | None
    width: int  # bytes per count in ``counts`` (narrowest unsigned type that fits)
    counts: bytes
    sums: bytes
    mins: bytes
    maxs: bytes
    sketches: list[tuple[int, bytes]]


class Window:
    """One rolling window: a ring of ``n`` panes of ``pane_s`` seconds plus running sums.

    The window at head pane ``h`` covers panes ``h - n + 1 .. h``, i.e. the last
    ``window_s`` seconds ending at the end of the current pane.
    """

    __slots__ = (
        "blobs",
        "counts",
        "head",
        "limit",
        "maxs",
        "mins",
        "n",
        "pane_s",
        "sketch",
        "sketches",
        "sums",
        "total",
        "window_s",
    )

    def __init__(self, window_s: float, pane_s: float, n_fields: int, with_sketch: bool) -> None:
        self.window_s = window_s
        self.pane_s = pane_s
        self.n = max(1, math.ceil(window_s / pane_s - _EPS))
        self.head: int | None = None
        # Newest pane add() may move the head to: the pane of now + MAX_FUTURE_S at
        # the last advance(now); None before any (nothing to judge against yet).
        self.limit: int | None = None
        self.counts: npt.NDArray[np.int64] = np.zeros((self.n, n_fields), dtype=np.int64)
        # per-pane floats in array('d'): compact, and scalar access is much
        # cheaper than on numpy arrays (this is the hot path of every partial)
        self.sums = array("d", bytes(8 * self.n))
        self.mins = array("d", [math.inf]) * self.n
        self.maxs = array("d", [-math.inf]) * self.n
        self.total: npt.NDArray[np.int64] = np.zeros(n_fields, dtype=np.int64)
        self.sketches: list[LogSketch | None] | None = [None] * self.n if with_sketch else None
        # serialized pane sketches, cached: an export re-serializes only changed panes
        self.blobs: list[bytes | None] = [None] * self.n
        self.sketch: LogSketch | None = LogSketch(RELATIVE_ACCURACY) if with_sketch else None

    def index(self, t: float) -> int:
        """Absolute pane index of time ``t``."""
        return math.floor(t / self.pane_s + _EPS)

    def advance(self, now: float) -> None:
        """Slide the head to the pane of ``now``, subtracting every pane that expires.

        A head beyond ``now + limits.MAX_FUTURE_S`` came from a poisoned event
        time: the window is cleared and restarts at ``now``.
        """
        self.limit = self.index(now + limits.MAX_FUTURE_S)
        if self.head is not None and self.head > self.limit:
            self._clear()
            self.head = None
        self._slide(self.index(now))

    def _slide(self, new: int) -> None:
        if self.head is None:
            self.head = new
            return
        if new <= self.head:
            return
        if new - self.head >= self.n:
            self._clear()
        else:
            for idx in range(self.head + 1, new + 1):
                self._expire(idx % self.n)
        self.head = new

    def _expire(self, slot: int) -> None:
        np.subtract(self.total, self.counts[slot], out=self.total)
        self.counts[slot] = 0
        self.sums[slot] = 0.0
        self.mins[slot] = math.inf
        self.maxs[slot] = -math.inf
        if self.sketches is not None and self.sketch is not None:
            old = self.sketches[slot]
            if old is not None:
                self.sketch.subtract(old)
                self.sketches[slot] = None
                self.blobs[slot] = None
                if self.sketch.is_empty:
                    # start afresh so the bin range does not keep every past outlier
                    self.sketch = LogSketch(RELATIVE_ACCURACY)

    def _clear(self) -> None:
        self.counts[:] = 0
        self.total[:] = 0
        self.sums = array("d", bytes(8 * self.n))
        self.mins = array("d", [math.inf]) * self.n
        self.maxs = array("d", [-math.inf]) * self.n
        if self.sketches is not None:
            self.sketches = [None] * self.n
            self.blobs = [None] * self.n
            self.sketch = LogSketch(RELATIVE_ACCURACY)

    def covers(self, t: float) -> bool:
        """True when the pane of ``t`` is not older than the window (it can still be applied)."""
        return self.head is None or self.index(t) > self.head - self.n

    def add(
        self,
        t: float,
        fields: npt.NDArray[np.int64],
        sum_s: float,
        min_s: float,
        max_s: float,
        sketch: LogSketch | None,
    ) -> bool:
        """Add one pane's aggregates at event time ``t``; False (nothing applied) if too old."""
        idx = self.index(t)
        if self.head is None or idx > self.head:
            if self.limit is not None and idx > self.limit:
                return False  # beyond the wall clock plus the allowed skew: never the head
            self._slide(idx)
        assert self.head is not None
        if idx <= self.head - self.n:
            return False
        slot = idx % self.n
        row = self.counts[slot]
        np.add(row, fields, out=row)
        np.add(self.total, fields, out=self.total)
        self.sums[slot] += sum_s
        if fields[COUNT] > 0:
            if min_s < self.mins[slot]:
                self.mins[slot] = min_s
            if max_s > self.maxs[slot]:
                self.maxs[slot] = max_s
        if self.sketches is not None and self.sketch is not None and sketch is not None:
            pane = self.sketches[slot]
            if pane is None:
                self.sketches[slot] = sketch.copy()
            else:
                pane.merge(sketch)
            self.blobs[slot] = None
            self.sketch.merge(sketch)
        return True

    # -- reads ------------------------------------------------------------------

    @property
    def count(self) -> int:
        return int(self.total[COUNT])

    @property
    def attempts(self) -> int:
        return int(self.total[ATTEMPTS])

    @property
    def errors(self) -> int:
        return int(self.total[ERRORS])

    @property
    def le_counts(self) -> tuple[int, ...]:
        return tuple(self.total[FIRST_EDGE:].tolist())

    def column(self, index: int) -> int:
        """The running sum of one column of the counter matrix over the window."""
        return int(self.total[index])

    @property
    def sum_s(self) -> float:
        return math.fsum(self.sums)

    @property
    def min_s(self) -> float | None:
        value = min(self.mins)
        return None if math.isinf(value) else value

    @property
    def max_s(self) -> float | None:
        value = max(self.maxs)
        return None if math.isinf(value) else value

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """Sketch quantiles over the window (None when empty or without a sketch)."""
        if self.sketch is None:
            return [None] * len(qs)
        return self.sketch.quantiles(qs)

    @property
    def nbytes(self) -> int:
        """Bytes held by this window's arrays and sketches."""
        size = self.counts.nbytes + self.total.nbytes
        size += sum(a.itemsize * len(a) for a in (self.sums, self.mins, self.maxs))
        if self.sketches is not None and self.sketch is not None:
            size += self.sketch.nbytes + sum(s.nbytes for s in self.sketches if s is not None)
        return size

    # -- state ------------------------------------------------------------------

    def state(self) -> WindowState:
        sketches = []
        if self.sketches is not None:
            for slot, pane in enumerate(self.sketches):
                if pane is not None:
                    blob = self.blobs[slot]
                    if blob is None:
                        blob = self.blobs[slot] = pane.to_bytes()
                    sketches.append((slot, blob))
        top = int(self.counts.max()) if self.counts.size else 0
        width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4 if top < 1 << 32 else 8
        return WindowState(
            head=self.head,
            width=width,
            counts=self.counts.astype(f"<u{width}").tobytes(),
            sums=self.sums.tobytes(),
            mins=self.mins.tobytes(),
            maxs=self.maxs.tobytes(),
            sketches=sketches,
        )

    def load(self, state: WindowState) -> None:
        """Replace this window's content by ``state`` (same window and pane width).

        A state with fewer columns than this window was written before its
        series gained trailing counters (issue 16): those load as zeros.
        """
        n, n_fields = self.counts.shape
        self.head = state.head
        if state.width not in (1, 2, 4, 8):
            raise ValueError(f"bad count width {state.width}")
        packed = np.frombuffer(state.counts, dtype=f"<u{state.width}")
        stored = packed.size // n
        if packed.size != n * stored or stored > n_fields:
            raise ValueError("window state does not match the window's pane count or columns")
        self.counts = np.zeros((n, n_fields), dtype=np.int64)
        self.counts[:, :stored] = packed.reshape(n, stored)
        self.sums, self.mins, self.maxs = array("d"), array("d"), array("d")
        self.sums.frombytes(state.sums)
        self.mins.frombytes(state.mins)
        self.maxs.frombytes(state.maxs)
        if not len(self.sums) == len(self.mins) == len(self.maxs) == self.n:
            raise ValueError("window state does not match the window's pane count")
        self.total = self.counts.sum(axis=0)
        if self.sketches is not None:
            self.sketches = [None] * self.n
            self.blobs = [None] * self.n
            self.sketch = LogSketch(RELATIVE_ACCURACY)
            for slot, data in state.sketches:
                pane = LogSketch.from_bytes(data)
                self.sketches[slot] = pane
                self.blobs[slot] = data
                self.sketch.merge(pane)
