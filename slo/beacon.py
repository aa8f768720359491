"""The enriched beacon: what the collector hands to the engine (in-process or via Kafka).

The collector validates the public v1 wire format (``collector/schema.py``),
corrects event times for client clock skew, maps the region onto the
allow-list, and produces one :class:`Beacon` per request body. Stage 1 reads
it back from raw bytes with :func:`decode_record`, which enforces the
collector's limits again (``slo/limits.py``: size, nesting depth, event count)
and turns *any* failure into :class:`Rejected` with a reason: ``beacons`` is a
topic anyone with write access can fill. One Kafka message carries one whole
beacon (many events): per-message overhead dominates a Faust agent, so events
are never produced one by one.

>>> b = Beacon("s1", 7, "eu-west-1", "rum", 10.0, 9.5, [Event("first_frame", 9.0, 120.0)])
>>> decode(encode(b)) == b
True
>>> try:
...     decode_record(b'{"events": ' + b"[" * 100_000)
... except Rejected as exc:
...     print(exc.reason)
invalid
"""

from __future__ import annotations

import msgspec

from slo import conventions as c
from slo import limits


class Event(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One player event; ``t`` is the clock-corrected event time (unix seconds).

    ``type`` is a ``conventions.EVENT_*``; ``exit_before_start`` feeds no SLI yet.
    """

    type: str
    t: float
    value_ms: float | None = None
    fatal: bool = False


class Beacon(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """One validated, enriched beacon. ``(session_id, seq)`` identifies it across retries.

    Unknown fields are refused, so (as on the wire) every container has a fixed
    shape and an acceptable record nests at most ``limits.MAX_DEPTH`` deep: any
    deeper structure fails at its first container, before the decoder recurses.
    """

    session_id: str
    seq: int
    region: str
    kind: str
    received_at: float
    sent_at: float
    events: list[Event]
    sdk: str = ""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Beacon)


def encode(beacon: Beacon) -> bytes:
    """Serialize for a Kafka message value (compact JSON, events as arrays)."""
    return _encoder.encode(beacon)


def decode(data: bytes) -> Beacon:
    """Parse trusted bytes (tests, the embedded engine); raises ``msgspec`` errors on bad input."""
    return _decoder.decode(data)


class Rejected(Exception):
    """A Kafka record that is not an acceptable beacon; ``reason`` is a ``conventions.REASON_*``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def decode_record(data: bytes | None) -> Beacon:
    """Parse a ``beacons`` record value with the collector's limits; raise :class:`Rejected`.

    Use it for every record read from Kafka (stage 1's read path and its dedup
    priming must agree on what is a beacon). Whatever goes wrong, including
    errors no one listed, becomes ``Rejected``, so one poison record can never
    stop a partition.
    """
    if data is None:
        raise Rejected(c.REASON_MALFORMED, "record without a value")
    if len(data) > limits.MAX_RECORD_BYTES:
        raise Rejected(c.REASON_TOO_LARGE, f"{len(data)} bytes, at most {limits.MAX_RECORD_BYTES}")
    try:
        beacon = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise Rejected(c.REASON_INVALID, str(exc)) from None
    except Exception as exc:  # DecodeError, RecursionError, anything: never a stuck partition
        raise Rejected(c.REASON_MALFORMED, f"not a beacon: {exc}") from None
    if len(beacon.events) > limits.MAX_EVENTS:
        raise Rejected(c.REASON_TOO_MANY_EVENTS, f"{len(beacon.events)} events, at most {limits.MAX_EVENTS}")
    if not 0.0 < beacon.received_at <= limits.MAX_UNIX_S:
        raise Rejected(c.REASON_INVALID, f"received_at {beacon.received_at!r} out of range")
    return beacon
