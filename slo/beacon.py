"""The enriched beacon: what the collector hands to the engine (in-process or via Kafka).

The collector validates the public v1 wire format (``collector/schema.py``),
corrects event times for client clock skew, maps the region onto the
allow-list, and produces one :class:`Beacon` per request body. Stage 1 reads
it back from raw bytes with :func:`decode_record`, which enforces the
collector's limits again (``slo/limits.py``: size, nesting depth, event count)
and turns *any* failure into :class:`Rejected` with a reason: ``beacons`` is a
topic anyone with write access can fill.

A Kafka record holds one whole beacon (many events; events are never
produced one by one) or, written by the collector's group commit, several
beacons of one partition (``docs/collector.md``, "Kafka records"). The
collector writes MessagePack (:func:`encode_record`, :func:`group_record`):
the same fields as the JSON of :func:`encode`, without formatting every
float as decimal text. :func:`decode_record` reads either encoding, one
beacon or a group: JSON records are what collectors before MessagePack
wrote, and what tests and tools may still write.

>>> b = Beacon("s1", 7, "eu-west-1", "rum", 10.0, 9.5, [Event("first_frame", 9.0, 120.0)])
>>> decode(encode(b)) == b
True
>>> decode_record(encode_record(b)) == decode_record(encode(b)) == [b]
True
>>> decode_record(group_record([encode_record(b), encode_record(b)])) == [b, b]
True
>>> decode_record(b"[" + encode(b) + b"," + encode(b) + b"]") == [b, b]
True
>>> try:
...     decode_record(b'{"events": ' + b"[" * 100_000)
... except Rejected as exc:
...     print(exc.reason)
invalid
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from slo import conventions as c
from slo import limits


class Event(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One player event; ``t`` is the clock-corrected event time (unix seconds).

    ``type`` is a ``conventions.EVENT_*``. For errors, ``error_class`` is a
    ``conventions.ERROR_CLASS_*`` (the collector always writes it) and
    ``fatal`` keeps meaning "counts against the SLO"; records written before
    ``error_class`` existed have 4 elements and decode with ``""``, which
    :meth:`resolved_class` reads from ``fatal`` as before.

    >>> Event("error", 1.0, None, True).resolved_class
    'fatal'
    >>> decode_event(b'["error",1.0,null,false]').resolved_class
    'warning'
    """

    type: str
    t: float
    value_ms: float | None = None
    fatal: bool = False
    error_class: str = ""

    @property
    def resolved_class(self) -> str:
        """The error class: ``error_class``, else ``fatal`` / ``warning`` from ``fatal``."""
        return self.error_class or (c.ERROR_CLASS_FATAL if self.fatal else c.ERROR_CLASS_WARNING)


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
    # The spec's dimension value, mapped onto its allow-list by the collector
    # ("" when the spec declares no dimension, and in records written before it).
    dim: str = ""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Beacon)
_group_decoder = msgspec.json.Decoder(list[Beacon])
_event_decoder = msgspec.json.Decoder(Event)
_record_encoder = msgspec.msgpack.Encoder()
_record_decoder = msgspec.msgpack.Decoder(Beacon)
_record_group_decoder = msgspec.msgpack.Decoder(list[Beacon])
_MSGPACK_FIXARRAY, _MSGPACK_ARRAY16 = 0x90, 0xDC


def encode(beacon: Beacon) -> bytes:
    """Compact JSON, events as arrays: for files (``streamslo backtest``), tests and tools."""
    return _encoder.encode(beacon)


def encode_record(beacon: Beacon) -> bytes:
    """One beacon as the collector writes it to Kafka: MessagePack, the fields of :func:`encode`."""
    return _record_encoder.encode(beacon)


def group_record(values: list[bytes]) -> bytes:
    """One record value for several :func:`encode_record` values: a MessagePack array of them.

    A group of one is the beacon's own value. Concatenating encoded items
    after an array header is what a MessagePack encoder writes for a list.

    >>> group_record([b"\\xa1a", b"\\xa1b"]) == msgspec.msgpack.encode(["a", "b"])
    True
    """
    n = len(values)
    if n == 1:
        return values[0]
    head = bytes((_MSGPACK_FIXARRAY | n,)) if n < 16 else bytes((_MSGPACK_ARRAY16,)) + n.to_bytes(2, "big")
    return head + b"".join(values)


def decode(data: bytes) -> Beacon:
    """Parse trusted bytes (tests, the embedded engine); raises ``msgspec`` errors on bad input."""
    return _decoder.decode(data)


def decode_event(data: bytes) -> Event:
    """Parse one encoded event (a JSON array); raises ``msgspec`` errors on bad input."""
    return _event_decoder.decode(data)


class Rejected(Exception):
    """A Kafka record that is not an acceptable beacon; ``reason`` is a ``conventions.REASON_*``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def decode_record(data: bytes | None) -> list[Beacon]:
    """The beacons of a ``beacons`` record value, with the collector's limits; raise :class:`Rejected`.

    Use it for every record read from Kafka (stage 1's read path and its dedup
    priming must agree on what is a beacon). A record is accepted or rejected
    whole: the collector never writes a group with a bad beacon in it.
    Whatever goes wrong, including errors no one listed, becomes
    ``Rejected``, so one poison record can never stop a partition.
    """
    if data is None:
        raise Rejected(c.REASON_MALFORMED, "record without a value")
    if len(data) > limits.MAX_RECORD_BYTES:
        raise Rejected(c.REASON_TOO_LARGE, f"{len(data)} bytes, at most {limits.MAX_RECORD_BYTES}")
    # JSON text starts with an ASCII byte; a MessagePack map or array never does.
    if not data or data[0] < 0x80:
        grouped = data[:1] == b"["  # the collector writes no leading whitespace
        decode_one: Callable[[bytes], Beacon] = _decoder.decode
        decode_group: Callable[[bytes], list[Beacon]] = _group_decoder.decode
    else:  # MessagePack: an array (fixarray, array 16/32) is a group, anything else one beacon
        grouped = (data[0] & 0xF0) == _MSGPACK_FIXARRAY or data[0] in (_MSGPACK_ARRAY16, 0xDD)
        decode_one, decode_group = _record_decoder.decode, _record_group_decoder.decode
    try:
        beacons = decode_group(data) if grouped else [decode_one(data)]
    except msgspec.ValidationError as exc:
        raise Rejected(c.REASON_INVALID, str(exc)) from None
    except Exception as exc:  # DecodeError, RecursionError, anything: never a stuck partition
        raise Rejected(c.REASON_MALFORMED, f"not a beacon: {exc}") from None
    if grouped and not 1 <= len(beacons) <= limits.MAX_GROUP_BEACONS:
        raise Rejected(c.REASON_INVALID, f"{len(beacons)} beacons in a group, 1..{limits.MAX_GROUP_BEACONS}")
    for beacon in beacons:
        if len(beacon.events) > limits.MAX_EVENTS:
            raise Rejected(c.REASON_TOO_MANY_EVENTS, f"{len(beacon.events)} events, at most {limits.MAX_EVENTS}")
        if not 0.0 < beacon.received_at <= limits.MAX_UNIX_S:
            raise Rejected(c.REASON_INVALID, f"received_at {beacon.received_at!r} out of range")
    return beacons
