"""Stage 1's pane accumulator: which event feeds which counter, and the partials a pane becomes.

:class:`Panes` holds one :class:`Cell` per (region, kind, pane, dim) of one
stage-1 source and is what :class:`slo.stage1.Stage1` adds beacons to and
flushes. The event mapping (``docs/spec.md``, "SLIs"):

============================  ===================================================
event                         counted as
============================  ===================================================
``first_frame``               a ``ttff`` value (if usable) and a play attempt
``interaction``               an ``interaction_rtt`` value
``live_latency``              a ``live_latency`` value
``error`` class fatal         a play attempt and an error
``error`` class warning       a warning (no attempt, no error)
``error`` class business      a business refusal (no attempt, no error)
``exit_before_start``         a play attempt and an exit
``stall``                     a rebuffering episode and its seconds
``playing``                   played seconds (a heartbeat)
============================  ===================================================

An error's class is :attr:`slo.beacon.Event.resolved_class`, so a record
written before classes existed (``fatal`` only) counts as it always did.
Events without a usable value (absent, negative, NaN; for ``stall`` and
``playing`` also above the collector's cap, ``slo/limits.py``) and unknown
types or classes are *ignored* (counted, not aggregated).

The spec's dimension splits only the SLIs that opt in
(:meth:`slo.model.Spec.splits`): their events go to the cell of the beacon's
dimension value, every other SLI's to the cell of ``dim=""``, so a
non-opted series never splits. The playback outcomes (attempts, errors,
exits, warnings, business) are one group: ``errors`` and
``exits_before_start`` share the attempts (``slo/spec.py`` makes them opt in
together).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from msgspec import structs

from slo import conventions as c
from slo.beacon import Beacon
from slo.limits import MAX_VALUE_MS
from slo.model import Spec
from slo.partial import Partial
from slo.sketch import RELATIVE_ACCURACY, LogSketch

# Which cell of a pane's (base, dimension) pair each group of counters goes to.
_BASE, _SPLIT = 0, 1

CellKey = tuple[str, str, float, str]  # (region, kind, pane index, dim)


class Cell:
    """The counters of one (region, kind, pane, dim): raw latency values and exact sums.

    Latency values stay in milliseconds in Python lists (one numpy conversion
    per flush, never per event); durations are summed in milliseconds, exact
    for whole milliseconds, and divided once when the partial is built.
    """

    __slots__ = (
        "business", "errors", "exits", "heartbeats", "interaction", "late_interaction", "late_live",
        "late_outcomes", "late_rebuffering", "late_ttff", "live", "played_ms", "stall_ms", "stalls",
        "starts", "ttff", "warnings",
    )

    def __init__(self) -> None:
        self.ttff: list[float] = []
        self.interaction: list[float] = []
        self.live: list[float] = []
        self.late_ttff = self.late_interaction = self.late_live = 0
        self.starts = self.errors = self.exits = self.warnings = self.business = 0
        self.late_outcomes = 0
        self.stalls = self.heartbeats = self.late_rebuffering = 0
        self.stall_ms = self.played_ms = 0.0

    def latencies(self) -> tuple[tuple[str, list[float], int], ...]:
        """(sli, values in ms, late count) of each latency SLI, in partial order."""
        return (
            (c.SLI_TTFF, self.ttff, self.late_ttff),
            (c.SLI_INTERACTION, self.interaction, self.late_interaction),
            (c.SLI_LIVE_LATENCY, self.live, self.late_live),
        )


# What Panes.add did with one beacon's events, for stage 1's counters: events
# counted, ignored, late, dropped in the future, dropped too old; and the newest
# event time. A plain tuple: one per beacon, so a NamedTuple's cost shows.
Added = tuple[int, int, int, int, int, float]


class Meta(NamedTuple):
    """The fields every partial of one flush shares."""

    source: str
    lo: int
    hi: int
    max_event_time: float
    max_received_at: float


class Panes:
    """The cells of one stage-1 source between two flushes; see the module doc."""

    def __init__(self, spec: Spec) -> None:
        self.pane_s = spec.pane_s
        self.edges = np.asarray(spec.histogram_buckets_s, dtype=np.float64)
        self.dimension = spec.dimension
        groups = (c.SLI_TTFF, c.SLI_INTERACTION, c.SLI_LIVE_LATENCY, c.SLI_ERRORS, c.SLI_REBUFFERING)
        self._groups = tuple(_SPLIT if spec.splits(sli) else _BASE for sli in groups)
        self.cells: dict[CellKey, Cell] = {}

    def add(
        self, beacon: Beacon, region: str, late_before: float, oldest: float, newest: float, max_t: float
    ) -> Added:
        """Count ``beacon``'s events; see the module doc.

        ``region`` is already mapped; an event at or before pane index
        ``late_before`` is late, one outside ``[oldest, newest]`` is dropped;
        ``max_t`` is the newest event time of the cut so far. All three bounds
        come from the beacon's ``received_at``, so replays agree.
        """
        kind, pane_s, cells = beacon.kind, self.pane_s, self.cells
        # Records on Kafka may come from anywhere: a value off the allow-list (or
        # none) is `other` here too, so the series count stays bounded.
        dim = "" if self.dimension is None else self.dimension.map(beacon.dim)
        g_ttff, g_inter, g_live, g_out, g_reb = self._groups
        # Hot loop (every event of every beacon): names bound to locals.
        first_frame, interaction, live_latency = c.EVENT_FIRST_FRAME, c.EVENT_INTERACTION, c.EVENT_LIVE_LATENCY
        error, exit_before_start, stall, playing = c.EVENT_ERROR, c.EVENT_EXIT_BEFORE_START, c.EVENT_STALL, c.EVENT_PLAYING
        fatal, warning, business = c.ERROR_CLASS_FATAL, c.ERROR_CLASS_WARNING, c.ERROR_CLASS_BUSINESS
        n_events = n_ignored = n_late = n_future = n_old = 0
        last_pane = None
        # The cells of the current pane, one per group (set at the first event).
        ttff: Cell
        inter: Cell
        live: Cell
        out: Cell
        reb: Cell
        for ev in beacon.events:
            t = ev.t
            if t > newest:
                n_future += 1
                continue
            if not t >= oldest:  # NaN lands here too
                n_old += 1
                continue
            pane = t // pane_s
            if pane != last_pane:  # events of one beacon mostly share a pane: lookups per run
                last_pane = pane
                base = cells.get((region, kind, pane, ""))
                if base is None:
                    base = cells[(region, kind, pane, "")] = Cell()
                split = cells.get((region, kind, pane, dim)) if dim else base
                if split is None:
                    split = cells[(region, kind, pane, dim)] = Cell()
                pair = (base, split)
                ttff, inter, live, out, reb = pair[g_ttff], pair[g_inter], pair[g_live], pair[g_out], pair[g_reb]
            late = pane <= late_before
            etype = ev.type
            v = ev.value_ms
            value = -1.0 if v is None else v  # usable when >= 0 (NaN is not)
            if etype == interaction:
                if not value >= 0.0:
                    n_ignored += 1
                    continue
                inter.interaction.append(value)
                if late:
                    inter.late_interaction += 1
            elif etype == first_frame:
                out.starts += 1
                if value >= 0.0:
                    ttff.ttff.append(value)
                    if late:
                        ttff.late_ttff += 1
                else:  # an attempt without a usable latency
                    if late:
                        out.late_outcomes += 1
            elif etype == error:
                error_class = ev.error_class or (fatal if ev.fatal else warning)  # Event.resolved_class
                if error_class == fatal:
                    out.errors += 1
                elif error_class == warning:
                    out.warnings += 1
                elif error_class == business:
                    out.business += 1
                else:
                    n_ignored += 1
                    continue
                if late:
                    out.late_outcomes += 1
            elif etype == exit_before_start:
                out.exits += 1
                if late:
                    out.late_outcomes += 1
            elif etype == live_latency:
                if not value >= 0.0:
                    n_ignored += 1
                    continue
                live.live.append(value)
                if late:
                    live.late_live += 1
            elif etype == stall or etype == playing:  # noqa: SIM109  # two compares beat a tuple per event
                # Sums take values up to the collector's cap only: one absurd
                # duration read from Kafka would otherwise own the ratio for good.
                if not 0.0 <= value <= MAX_VALUE_MS:
                    n_ignored += 1
                    continue
                if etype == stall:
                    reb.stalls += 1
                    reb.stall_ms += value
                else:
                    reb.heartbeats += 1
                    reb.played_ms += value
                if late:
                    reb.late_rebuffering += 1
            else:
                n_ignored += 1
                continue
            n_events += 1
            if late:
                n_late += 1
            if t > max_t:
                max_t = t
        return n_events, n_ignored, n_late, n_future, n_old, max_t

    # -- output --------------------------------------------------------------------

    def partials(self, meta_of: dict[tuple[str, str], Meta]) -> list[Partial]:
        """Every cell's partials, sorted by (region, kind, pane, dim), then ttff, interaction_rtt,
        live_latency, errors, rebuffering; ``meta_of[(region, kind)]`` gives the shared fields."""
        out: list[Partial] = []
        for key in sorted(self.cells):
            region, kind, pane, dim = key
            out.extend(self._cell_partials(self.cells[key], meta_of[(region, kind)], region, kind, pane * self.pane_s, dim))
        return out

    def _cell_partials(self, cell: Cell, meta: Meta, region: str, kind: str, start: float, dim: str) -> list[Partial]:
        head = Partial(
            region=region, sli="", kind=kind, pane_start=start, pane_s=self.pane_s,
            source=meta.source, lo=meta.lo, hi=meta.hi, dim=dim,
            max_event_time=meta.max_event_time, max_received_at=meta.max_received_at,
        )
        out = [
            structs.replace(head, sli=sli, **self._latency(values, late))
            for sli, values, late in cell.latencies()
            if values
        ]
        attempts = cell.starts + cell.errors + cell.exits
        if attempts or cell.warnings or cell.business:
            out.append(structs.replace(
                head, sli=c.SLI_ERRORS, attempts=attempts, errors=cell.errors, exits=cell.exits,
                warnings=cell.warnings, business=cell.business, late=cell.late_outcomes,
            ))
        if cell.stalls or cell.heartbeats:
            out.append(structs.replace(
                head, sli=c.SLI_REBUFFERING, stalls=cell.stalls, stall_s=cell.stall_ms / 1000.0,
                played_s=cell.played_ms / 1000.0, late=cell.late_rebuffering,
            ))
        return out

    def _latency(self, values_ms: list[float], late: int) -> dict[str, Any]:
        """A latency partial's fields: exact ``le_counts`` at every bucket edge and a sketch."""
        # Same IEEE division as v / 1000.0 per value, done once per flush.
        values = np.asarray(values_ms, dtype=np.float64) / 1000.0
        values.sort()
        sketch = LogSketch(RELATIVE_ACCURACY)
        sketch.add_batch(values)
        le = np.searchsorted(values, self.edges, side="right")
        return {
            "count": int(values.size), "sum_s": float(values.sum()), "min_s": float(values[0]),
            "max_s": float(values[-1]), "le_counts": tuple(int(x) for x in le),
            "sketch": sketch.to_bytes(), "late": late,
        }
