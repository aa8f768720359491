"""The beacon limits the collector enforces on HTTP and stage 1 enforces again on Kafka.

Use these constants wherever a beacon is accepted: ``collector/`` (request
bodies, ``collector/schema.py`` and ``collector/config.py``) and
``slo.beacon.decode_record`` / ``slo.stage1`` (records read from ``beacons``,
which anyone with write access to the topic can fill). One place, so the two
gates cannot drift apart. Pure: no I/O, no third-party imports.

>>> from slo import limits
>>> limits.MAX_EVENTS, limits.MAX_DEPTH
(500, 3)
>>> in_time_bounds(1000.0, 1000.0 + limits.MAX_FUTURE_S + 1)
'event_in_future'
"""

from __future__ import annotations

from typing import Final

from slo import conventions as c

MAX_BODY_BYTES: Final = 1 << 20  # request body after decompression (collector default)
# A Kafka record is one enriched beacon; past the default body cap it cannot have
# come from a collector with default limits, whatever its encoding.
MAX_RECORD_BYTES: Final = MAX_BODY_BYTES
MAX_EVENTS: Final = 500  # events per beacon
# Beacons in one group-commit record (a JSON array of beacons). Stage 1's dedup
# memory grows with it: its window counts records (docs/architecture.md).
MAX_GROUP_BEACONS: Final = 64
MAX_DEPTH: Final = 3  # JSON nesting of an acceptable beacon: object > events list > event
MAX_SESSION_ID: Final = 128
MAX_LABEL: Final = 64  # region, sdk, name, code, dimension keys and values
MAX_DIMENSIONS: Final = 8  # entries of a beacon's `dimensions` object
MAX_VALUE_MS: Final = 600_000.0  # 10 minutes: anything longer is not a latency
MAX_UNIX_S: Final = 1e11  # year 5138; rejects absurd magnitudes before any arithmetic
MAX_SEQ: Final = 2**53  # exact in a JavaScript number
MAX_EVENT_AGE_S: Final = 3600.0  # corrected event time at most this long before received_at
MAX_FUTURE_S: Final = 60.0  # ... and at most this long after it


def in_time_bounds(
    received_at: float,
    t: float,
    *,
    max_age_s: float = MAX_EVENT_AGE_S,
    max_future_s: float = MAX_FUTURE_S,
) -> str | None:
    """Why event time ``t`` is unacceptable for a beacon received at ``received_at``, or None.

    Returns ``conventions.REASON_EVENT_TOO_OLD`` / ``REASON_EVENT_IN_FUTURE``
    (NaN counts as too old: every comparison with it is false).
    """
    if t > received_at + max_future_s:
        return c.REASON_EVENT_IN_FUTURE
    if not t >= received_at - max_age_s:
        return c.REASON_EVENT_TOO_OLD
    return None
