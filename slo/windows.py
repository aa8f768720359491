"""Rolling windows plus cumulative totals for one (region, sli, kind, dim) series.

Stage 2 (``slo/stage2.py``) keeps one :class:`Series` per region, SLI, kind
and dimension value (``""`` for the SLIs that do not opt in to the spec's
dimension). Latency SLIs and the two series that carry the other SLIs have one
each: ``errors`` (playback outcomes; the ``exits_before_start`` SLI reads its
exits and attempts) and ``rebuffering`` (stalls, stall and played time).
A series holds one :class:`slo.rolling.Window` for every rolling window of the
spec (``Spec.stream_windows_s`` plus the budget period); sketches only for
``Spec.quantile_windows_s``. Panes, pane widths, time and lateness of one
window: ``slo/rolling.py``.

Cumulative totals (the Prometheus counters) take every partial, late for some
window or not, so totals stay exact. Stall and played time are kept as integer
microseconds (:data:`US`), so their window sums are exact too and so is the
rebuffering ratio read from them.

Example::

    series = Series(spec, "ttff", "rum")
    series.apply(partial)            # True when every window took it
    series.advance(now)              # expire panes that left each window
    series.window(60.0).quantiles([0.95])
    series.counts(60.0).attempts     # every counter of one window (Counts)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import numpy as np
import numpy.typing as npt

from slo import conventions as c
from slo.model import Spec, sli_kind
from slo.partial import Partial
from slo.rolling import ATTEMPTS, COUNT, ERRORS, FIRST_EDGE, Window, WindowState, pane_width
from slo.sketch import RELATIVE_ACCURACY, LogSketch

__all__ = ["US", "Counts", "Series", "SeriesState", "merged_quantiles", "series_sli", "summed_counts"]

# The extra columns of the two series without histogram edges, after COUNT,
# ATTEMPTS and ERRORS (``slo/rolling.py``): states written before they existed
# have fewer columns and load with zeros there.
EXITS, WARNINGS, BUSINESS = FIRST_EDGE, FIRST_EDGE + 1, FIRST_EDGE + 2  # the errors series
STALLS, STALL_US, PLAYED_US = FIRST_EDGE, FIRST_EDGE + 1, FIRST_EDGE + 2  # the rebuffering series
_EXTRA_COLUMNS = 3
# Stall and played time are counted in integer microseconds: exact sums.
US = 1_000_000


def series_sli(sli: str) -> str:
    """The SLI whose series holds ``sli``'s counts: ``errors`` for ``exits_before_start``, else itself."""
    return c.SLI_ERRORS if sli == c.SLI_EXITS_BEFORE_START else sli


@dataclass(frozen=True)
class Counts:
    """Every counter of one window of a series (or its cumulative totals), summable over series.

    ``count``/``le_counts`` for latency series; the playback outcomes for the
    errors series; ``stalls``/``stall_us``/``played_us`` for rebuffering. Stage 2
    adds the counts of a region's dimension values to evaluate its SLOs.
    """

    count: int = 0
    le_counts: tuple[int, ...] = ()
    attempts: int = 0
    errors: int = 0
    exits: int = 0
    warnings: int = 0
    business: int = 0
    stalls: int = 0
    stall_us: int = 0
    played_us: int = 0

    def __add__(self, other: Counts) -> Counts:
        if self.le_counts and other.le_counts:
            le = tuple(a + b for a, b in zip(self.le_counts, other.le_counts, strict=True))
        else:
            le = self.le_counts or other.le_counts
        return Counts(
            count=self.count + other.count,
            le_counts=le,
            attempts=self.attempts + other.attempts,
            errors=self.errors + other.errors,
            exits=self.exits + other.exits,
            warnings=self.warnings + other.warnings,
            business=self.business + other.business,
            stalls=self.stalls + other.stalls,
            stall_us=self.stall_us + other.stall_us,
            played_us=self.played_us + other.played_us,
        )


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
    # Issue 16, last with defaults: states written before them decode with zeros.
    exits: int = 0
    warnings: int = 0
    business: int = 0
    stalls: int = 0
    stall_us: int = 0
    played_us: int = 0


class Series:
    """Rolling windows plus cumulative totals for one (region, sli, kind, dim).

    ``sli`` is a latency SLI, ``errors`` or ``rebuffering`` (:func:`series_sli`).
    Cumulative totals only grow: they back the Prometheus histogram and counters.
    """

    def __init__(self, spec: Spec, sli: str, kind: str, dim: str = "") -> None:
        self.sli = sli
        self.kind = kind
        self.dim = dim
        self.is_latency = sli_kind(sli) == c.SLI_KIND_LATENCY
        self.edges: tuple[float, ...] = spec.histogram_buckets_s if self.is_latency else ()
        self.n_fields = FIRST_EDGE + (len(self.edges) if self.is_latency else _EXTRA_COLUMNS)
        quantile_windows = set(spec.quantile_windows_s)
        self.windows: dict[float, Window] = {}
        for window_s in sorted({*spec.stream_windows_s, spec.period_s}):
            width = pane_width(window_s, spec.pane_s)
            sketched = self.is_latency and window_s in quantile_windows
            self.windows[window_s] = Window(window_s, width, self.n_fields, sketched)
        self.count = 0
        self.sum_s = 0.0
        self.le_counts: npt.NDArray[np.int64] = np.zeros(len(self.edges), dtype=np.int64)
        self.attempts = 0
        self.errors = 0
        self.exits = 0
        self.warnings = 0
        self.business = 0
        self.stalls = 0
        self.stall_us = 0
        self.played_us = 0
        self.stage1_late = 0
        self.max_event_time = 0.0
        self.max_received_at = 0.0

    def check(self, partial: Partial) -> str | None:
        """Why ``partial`` cannot be applied to this series, or None when it can."""
        if self.is_latency and len(partial.le_counts) != len(self.edges):
            return f"le_counts has {len(partial.le_counts)} edges, want {len(self.edges)}"
        counters = (partial.count, partial.attempts, partial.errors, partial.late, partial.exits,
                    partial.warnings, partial.business, partial.stalls)
        if min(counters) < 0:
            return "negative count"
        if not (math.isfinite(partial.stall_s) and math.isfinite(partial.played_s)):
            return "stall_s or played_s is not finite"
        if min(partial.stall_s, partial.played_s) < 0:
            return "negative duration"
        if not math.isfinite(partial.pane_start):
            return "pane_start is not finite"
        return None

    def apply(self, partial: Partial) -> bool:
        """Add ``partial`` to the totals and every window still covering its pane.

        Returns False when at least one window had already passed the pane (late).
        The caller must have checked the partial with :meth:`check`.
        """
        fields = np.zeros(self.n_fields, dtype=np.int64)
        fields[COUNT] = partial.count
        fields[ATTEMPTS] = partial.attempts
        fields[ERRORS] = partial.errors
        if self.edges:
            fields[FIRST_EDGE:] = partial.le_counts
            np.add(self.le_counts, fields[FIRST_EDGE:], out=self.le_counts)
        elif self.sli == c.SLI_REBUFFERING:
            stall_us, played_us = round(partial.stall_s * US), round(partial.played_s * US)
            fields[STALLS], fields[STALL_US], fields[PLAYED_US] = partial.stalls, stall_us, played_us
            self.stalls += partial.stalls
            self.stall_us += stall_us
            self.played_us += played_us
        else:
            fields[EXITS], fields[WARNINGS], fields[BUSINESS] = partial.exits, partial.warnings, partial.business
            self.exits += partial.exits
            self.warnings += partial.warnings
            self.business += partial.business
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

    def counts(self, window_s: float | None = None) -> Counts:
        """Every counter over the window ``window_s``, or the cumulative totals when None."""
        if window_s is None:
            return Counts(
                count=self.count, le_counts=tuple(int(v) for v in self.le_counts),
                attempts=self.attempts, errors=self.errors, exits=self.exits,
                warnings=self.warnings, business=self.business,
                stalls=self.stalls, stall_us=self.stall_us, played_us=self.played_us,
            )
        w = self.windows[window_s]
        if self.is_latency:
            return Counts(count=w.count, le_counts=w.le_counts)
        if self.sli == c.SLI_REBUFFERING:
            return Counts(stalls=w.column(STALLS), stall_us=w.column(STALL_US), played_us=w.column(PLAYED_US))
        return Counts(attempts=w.attempts, errors=w.errors, exits=w.column(EXITS),
                      warnings=w.column(WARNINGS), business=w.column(BUSINESS))

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
            exits=self.exits,
            warnings=self.warnings,
            business=self.business,
            stalls=self.stalls,
            stall_us=self.stall_us,
            played_us=self.played_us,
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
        self.exits = state.exits
        self.warnings = state.warnings
        self.business = state.business
        self.stalls = state.stalls
        self.stall_us = state.stall_us
        self.played_us = state.played_us
        self.stage1_late = state.stage1_late
        self.max_event_time = state.max_event_time
        self.max_received_at = state.max_received_at
        for window, window_state in zip(self.windows.values(), state.windows, strict=True):
            window.load(window_state)


def summed_counts(parts: Sequence[Series], window_s: float | None = None) -> Counts:
    """The counters of ``parts`` (one series per dimension value) added up: the region's figures."""
    if len(parts) == 1:
        return parts[0].counts(window_s)
    return sum((p.counts(window_s) for p in parts), Counts())


def merged_quantiles(parts: Sequence[Series], window_s: float, qs: Sequence[float]) -> list[float | None]:
    """Quantiles of ``window_s`` over every series of ``parts``: their window sketches merged.

    None for each quantile when the window keeps no sketch or holds no value.
    """
    sketches = [s for p in parts if (s := p.window(window_s).sketch) is not None and not s.is_empty]
    if not sketches:
        return [None] * len(qs)
    if len(sketches) == 1:
        return sketches[0].quantiles(qs)
    merged = LogSketch(RELATIVE_ACCURACY)
    for sketch in sketches:
        merged.merge(sketch)
    return merged.quantiles(qs)
