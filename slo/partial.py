"""A partial aggregate: what stage 1 sends to stage 2 (topic ``slo-partials``, key = region).

One partial summarizes the events of one (region, sli, kind, dim) in one event-time
pane, seen by one stage-1 input (``source``, e.g. ``"beacons/3"``) between two
flushes: source offsets ``lo < offset <= hi``. Everything in it merges exactly:

- ``sketch``: a serialized :class:`slo.sketch.LogSketch` (latency SLIs only);
- ``le_counts``: cumulative counts of values ``<= edge`` for every edge of
  ``Spec.histogram_buckets_s``, so good/bad counts at each threshold are exact;
- ``count``/``sum_s``/``min_s``/``max_s`` for latency SLIs
  (``ttff``, ``interaction_rtt``, ``live_latency``);
- the playback outcomes ``attempts``/``errors``/``exits``/``warnings``/
  ``business`` on the ``errors`` partial (the ``exits_before_start`` SLI is
  read from its ``exits`` / ``attempts``);
- ``stalls``/``stall_s``/``played_s`` on the ``rebuffering`` partial.

``dim`` is the spec dimension's value for the SLIs that opt in (``""`` for
the others), so stage 2 keys series by (sli, kind, dim).

``trace_links`` carries the contexts of the sampled stage-1 spans that fed the
partial (``docs/telemetry.md``); it plays no part in the aggregate.

``(source, lo, hi)`` makes aggregation idempotent under at-least-once
delivery: stage 2 remembers, per region and source, the highest ``hi`` it has
applied and skips any partial at or below it (see ``docs/architecture.md``).
"""

from __future__ import annotations

import msgspec


class Partial(msgspec.Struct, frozen=True, kw_only=True):
    """One mergeable partial aggregate. Build with keyword arguments."""

    region: str
    sli: str
    kind: str
    pane_start: float
    pane_s: float
    source: str
    lo: int
    hi: int
    count: int = 0
    sum_s: float = 0.0
    min_s: float = 0.0
    max_s: float = 0.0
    le_counts: tuple[int, ...] = ()
    sketch: bytes = b""
    attempts: int = 0
    errors: int = 0
    late: int = 0
    max_event_time: float = 0.0
    max_received_at: float = 0.0
    # Encoded stage-1 span contexts (slo.telemetry.LinkSet) for stage 2's
    # merge span to link to; b"" when none was sampled. Last, with a default, so
    # payloads written before it existed still decode.
    trace_links: bytes = b""
    # Issue 16, also last with defaults so older payloads decode: the dimension
    # value, the other playback outcomes, and the rebuffering sums.
    dim: str = ""
    exits: int = 0
    warnings: int = 0
    business: int = 0
    stalls: int = 0
    stall_s: float = 0.0
    played_s: float = 0.0


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Partial)


def encode(partial: Partial) -> bytes:
    """Serialize for a Kafka message value (msgpack)."""
    return _encoder.encode(partial)


def decode(data: bytes) -> Partial:
    """Parse a Kafka message value; raises ``msgspec.DecodeError`` on bad input."""
    return _decoder.decode(data)
