"""The enriched beacon: what the collector hands to the engine (in-process or via Kafka).

The collector validates the public v1 wire format (``collector/schema.py``),
corrects event times for client clock skew, maps the region onto the
allow-list, and produces one :class:`Beacon` per request body. Stage 1 reads
it back from raw bytes with :func:`decode`. One Kafka message carries one whole
beacon (many events): per-message overhead dominates a Faust agent, so events
are never produced one by one.

>>> b = Beacon("s1", 7, "eu-west-1", "rum", 10.0, 9.5, [Event("first_frame", 9.0, 120.0)])
>>> decode(encode(b)) == b
True
"""

from __future__ import annotations

import msgspec


class Event(msgspec.Struct, array_like=True, frozen=True):
    """One player event; ``t`` is the clock-corrected event time (unix seconds)."""

    type: str
    t: float
    value_ms: float | None = None
    fatal: bool = False


class Beacon(msgspec.Struct, frozen=True):
    """One validated, enriched beacon. ``(session_id, seq)`` identifies it across retries."""

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
    """Parse a Kafka message value; raises ``msgspec.ValidationError`` on bad input."""
    return _decoder.decode(data)
