"""Stage 1: turn beacons into per-pane partial aggregates, replay-deterministically.

Use :class:`Stage1` wherever beacons are read from an ordered input (a Kafka
partition, or the embedded engine's in-process queue). Each input is a
``source`` (``"beacons/3"``) with increasing offsets. Beacons are added one by
one; :meth:`Stage1.flush` emits one :class:`slo.partial.Partial` per (region,
sli, kind, pane, dim) for everything added from that source since its last
flush, covering offsets ``lo < offset <= hi``. Which event feeds which SLI,
and how the spec's dimension splits the SLIs that opt in, is
``slo/stage1_panes.py``.

The content of a flush depends only on the input records between ``lo`` and
``hi`` (and, for duplicates, the ``dedup_records`` records before them), never
on wall-clock time or on when the process started. That is what makes
replays after a crash produce byte-identical partials, which stage 2 then
skips by watermark (see ``docs/architecture.md``):

- duplicates: a beacon ``(session_id, seq)`` is a duplicate when the same key
  occurred at an earlier offset less than ``dedup_records`` offsets back in
  the same source. After a restart :meth:`prime` rebuilds this memory from the
  records before ``lo`` without counting them;
- freshness: each partial carries the newest event time and ``received_at``
  of its (region, kind) in the cut, so stage 2's freshness is per region;
- lateness: an event is *late* when its pane ended more than
  ``Spec.allowed_lateness_s`` before the beacon's ``received_at``. Late events
  are still aggregated into their own pane (stage 2's windows decide whether
  a window can take them; cumulative totals always do), and counted in
  ``Partial.late``;
- event-time bounds: an event more than ``max_event_age_s`` before or
  ``max_future_s`` after its beacon's ``received_at`` (the collector's bounds,
  ``slo/limits.py``) is dropped and counted in ``counters.dropped_events`` by
  reason, so no record read from Kafka can move a window head far ahead.

Example::

    stage1 = Stage1(spec)
    stage1.begin("beacons/0", lo=-1)
    stage1.add(beacon, "beacons/0", offset=0)      # True: new beacon
    stage1.add(beacon, "beacons/0", offset=1)      # False: retry of the same beacon
    partials = stage1.flush("beacons/0")           # lo=-1, hi=1
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from slo import conventions as c
from slo import limits
from slo.beacon import Beacon
from slo.model import Spec
from slo.partial import Partial
from slo.stage1_panes import Meta, Panes

DEFAULT_DEDUP_RECORDS = 100_000


class _Dedup:
    """Offsets of recently accepted beacon keys in one source, bounded to ``size`` records.

    Keys are 64-bit hashes of ``(session_id, seq)``: a ring of the last
    ``size`` records' (offset, key) pairs evicts old keys in O(1) with fixed
    memory, and the decision rule compares offsets, so lazy eviction never
    changes an answer. A group-commit record holds several keys at one
    offset: the first is in the ring, the others in ``extra`` under that
    offset, evicted with it.
    """

    __slots__ = ("extra", "offsets", "ring_keys", "ring_offsets", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.offsets: dict[int, int] = {}
        self.ring_keys = array("q", bytes(8 * size))
        self.ring_offsets = array("q", [-1]) * size
        self.extra: dict[int, list[int]] = {}

    def check(self, key: int, offset: int) -> bool:
        """Record ``key`` at ``offset``; True when it is new, False for a duplicate.

        A duplicate is a key that occurred (as a new beacon or as a duplicate)
        less than ``size`` offsets earlier. Every occurrence is remembered, so
        the answer at ``o`` depends only on the records in ``(o - size, o)``:
        priming those after a restart reproduces every later answer.
        """
        prev = self.offsets.get(key)
        if prev == offset:
            return True  # the same record read again: not a duplicate
        duplicate = prev is not None and prev < offset and offset - prev < self.size
        self.offsets[key] = offset
        slot = offset % self.size
        old_offset = self.ring_offsets[slot]
        if old_offset == offset:  # another beacon of the same group record
            self.extra.setdefault(offset, []).append(key)
            return not duplicate
        if old_offset >= 0:
            for old_key in (self.ring_keys[slot], *self.extra.pop(old_offset, ())):
                if self.offsets.get(old_key) == old_offset:
                    del self.offsets[old_key]
        self.ring_keys[slot] = key
        self.ring_offsets[slot] = offset
        return not duplicate


@dataclass
class _Source:
    lo: int
    hi: int
    dedup: _Dedup
    panes: Panes  # the events added since the last flush, per (region, kind, pane, dim)
    # (region, kind) -> [max event time, max received_at] in this cut: freshness is
    # per region, so one maximum per cut would give every region the newest one's.
    maxima: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    # Duplicates seen since the last flush: counted when their cut is flushed, so a
    # partition revoked before its cut (and replayed by its next owner) counts them once.
    dups: int = 0


@dataclass
class Stage1Counters:
    """Monotonic counters for self-metrics (never reset by flush or drop).

    ``duplicates`` grows when the cut holding them is flushed; the other counters
    count work as it is done (a replay after a revocation counts again).
    """

    beacons: int = 0
    duplicates: int = 0
    events: int = 0
    late_events: int = 0
    ignored_events: int = 0
    partials: int = 0
    # Records skipped (not decodable or not valid) and events dropped (outside the
    # event-time bounds), by reason (``conventions.REASON_*``).
    skipped_records: dict[str, int] = field(default_factory=dict)
    dropped_events: dict[str, int] = field(default_factory=dict)


@dataclass
class Stage1Stats:
    """What a stage-1 runner reports for /metrics: its counters and lag per input partition."""

    counters: Stage1Counters = field(default_factory=Stage1Counters)
    lag: dict[int, int] = field(default_factory=dict)
    failed_cuts: int = 0  # cuts whose commit or produce failed (their partitions were reset)


class Stage1:
    """Dedup beacons per source and accumulate per (region, sli, kind, pane, dim); see module doc."""

    def __init__(
        self,
        spec: Spec,
        *,
        dedup_records: int = DEFAULT_DEDUP_RECORDS,
        max_event_age_s: float = limits.MAX_EVENT_AGE_S,
        max_future_s: float = limits.MAX_FUTURE_S,
    ) -> None:
        if dedup_records < 1:
            raise ValueError("dedup_records must be >= 1")
        self.spec = spec
        self.max_event_age_s = max_event_age_s
        self.max_future_s = max_future_s
        self.pane_s = spec.pane_s
        self.lateness_s = spec.allowed_lateness_s
        self.regions = frozenset(spec.regions)
        self.dedup_records = dedup_records
        self.counters = Stage1Counters()
        self._sources: dict[str, _Source] = {}

    # -- source lifecycle ---------------------------------------------------------

    def begin(self, source: str, lo: int) -> None:
        """Start (or restart) ``source``: the next flush covers offsets after ``lo``.

        Forgets any unflushed data and the duplicate memory of that source.
        """
        self._sources[source] = _Source(lo, lo, _Dedup(self.dedup_records), Panes(self.spec))

    def drop(self, source: str) -> None:
        """Forget ``source`` (partition revoked): unflushed data is replayed by its next owner."""
        self._sources.pop(source, None)

    def pending(self, source: str) -> tuple[int, int] | None:
        """``(lo, hi)`` of what the next flush of ``source`` would cover; None if unknown."""
        s = self._sources.get(source)
        return None if s is None else (s.lo, s.hi)

    def _source(self, source: str, offset: int) -> _Source:
        s = self._sources.get(source)
        if s is None:
            self.begin(source, offset - 1)
            s = self._sources[source]
        return s

    # -- input ---------------------------------------------------------------------

    def prime(self, session_id: str, seq: int, source: str, offset: int) -> None:
        """Remember a beacon read *before* ``lo`` (rebuilding dedup memory after a restart)."""
        self._source(source, offset + 1).dedup.check(hash((session_id, seq)), offset)

    def add_record(self, beacons: list[Beacon], source: str, offset: int) -> int:
        """Accumulate the beacons of the record at ``offset``; return how many were new.

        A record holds one beacon or a group-commit group (``slo.beacon.decode_record``).
        A retry that landed in the same group as its original is a duplicate too.
        """
        if len(beacons) == 1:
            return int(self.add(beacons[0], source, offset))
        new = 0
        seen: set[tuple[str, int]] = set()
        for beacon in beacons:
            key = (beacon.session_id, beacon.seq)
            if key in seen:
                self._source(source, offset).dups += 1
                continue
            seen.add(key)
            new += self.add(beacon, source, offset)
        return new

    def skip(self, source: str, offset: int, reason: str | None = None) -> None:
        """Mark a non-beacon or malformed record at ``offset`` as consumed, counted under ``reason``."""
        s = self._source(source, offset)
        if offset > s.hi:
            s.hi = offset
        if reason is not None:
            skipped = self.counters.skipped_records
            skipped[reason] = skipped.get(reason, 0) + 1

    def add(self, beacon: Beacon, source: str, offset: int) -> bool:
        """Accumulate ``beacon`` read at ``offset``; False when it is a duplicate (not counted)."""
        s = self._source(source, offset)
        if offset > s.hi:
            s.hi = offset
        counters = self.counters
        if not s.dedup.check(hash((beacon.session_id, beacon.seq)), offset):
            s.dups += 1
            return False
        counters.beacons += 1
        region = beacon.region if beacon.region in self.regions else c.REGION_OTHER
        kind = beacon.kind
        received = beacon.received_at
        # One maxima lookup per beacon (region and kind are per beacon), not per event.
        maxima = s.maxima.get((region, kind))
        # Lateness and the collector's event-time bounds depend only on the
        # record (received_at), so replays agree.
        late_before = (received - self.lateness_s) // self.pane_s - 1
        oldest, newest = received - self.max_event_age_s, received + self.max_future_s
        n_events, n_ignored, n_late, n_future, n_old, max_t = s.panes.add(
            beacon, region, late_before, oldest, newest, maxima[0] if maxima is not None else 0.0
        )
        if maxima is None:
            s.maxima[(region, kind)] = [max_t, received]
        else:
            maxima[0] = max_t
            if received > maxima[1]:
                maxima[1] = received
        counters.events += n_events
        counters.ignored_events += n_ignored
        counters.late_events += n_late
        if n_future or n_old:
            self._count_dropped(n_future, n_old)
        return True

    def _count_dropped(self, n_future: int, n_old: int) -> None:
        dropped = self.counters.dropped_events
        for reason, n in ((c.REASON_EVENT_IN_FUTURE, n_future), (c.REASON_EVENT_TOO_OLD, n_old)):
            if n:
                dropped[reason] = dropped.get(reason, 0) + n

    # -- output --------------------------------------------------------------------

    def flush(self, source: str, now: float | None = None) -> list[Partial]:
        """Partials for everything added from ``source`` since its last flush.

        Sorted by (region, kind, pane, dim), then SLI (:meth:`Panes.partials`). Advances the source's ``lo``
        to its ``hi``. ``now`` is accepted for symmetry with stage 2 but never
        affects the content (replays must reproduce it exactly).
        """
        s = self._sources.get(source)
        if s is None:
            return []
        meta = {
            key: Meta(source, s.lo, s.hi, max_event_time, max_received_at)
            for key, (max_event_time, max_received_at) in s.maxima.items()
        }
        out = s.panes.partials(meta)
        s.lo = s.hi
        s.panes = Panes(self.spec)
        # Per-cut maxima (not per-process), so a replayed cut carries the same values.
        s.maxima = {}
        self.counters.partials += len(out)
        self.counters.duplicates += s.dups
        s.dups = 0
        return out
