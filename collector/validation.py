"""Turning a request body into an enriched :class:`slo.beacon.Beacon`, or a :class:`Refused`.

Use :func:`read_body` to pull the raw body off an ASGI ``receive`` with the
size cap enforced *after* decompression, then :func:`to_beacon` to decode,
check and enrich it. Both raise :class:`Refused`, which carries the status,
the refusal reason (``slo.conventions.REASON_*``) and the offending field.

One bad event refuses the whole beacon (422 naming ``events[i]...``); nothing
of it is exported, and the SDK learns exactly which event to fix. Other
requests are unaffected.

>>> import time
>>> now = time.time()
>>> body = (b'{"v":1,"session_id":"s","seq":1,"sent_at":%f,"events":'
...         b'[{"type":"first_frame","ts":%f,"value_ms":5}]}' % (now - 30, now - 31))
>>> b = to_beacon(body, CollectorConfig(require_key=False), received_at=now)
>>> round(now - b.events[0].t, 3)   # client clock 30 s slow: corrected
1.0
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

from collector.config import CollectorConfig
from collector.schema import BEACON_DECODER, VALUE_EVENT_TYPES, WireEvent
from slo import conventions as c
from slo.beacon import Beacon, Event
from slo.limits import MAX_EVENTS

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

BODY = "body"  # the "field" named when the body as a whole is at fault
# "... - at `$.events[3].value_ms`", or "... - at `key` in `$.dimensions`" for a
# dict key; a dict value's "[...]" is dropped (its key is no path segment).
_PATH = re.compile(r" - at (?:`key` in )?`\$\.?(.*?)(?:\[\.\.\.\])?`$")
_MISSING = re.compile(r"missing required field `([^`]+)`|unknown field `([^`]+)`")


class Refused(Exception):
    """A request the collector declines; becomes a 4xx (or 503) JSON response."""

    def __init__(
        self,
        status: int,
        reason: str,
        field: str,
        message: str,
        *,
        events: int = 0,
        retry_after: float = 0.0,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.field = field
        self.message = message
        self.events = events
        self.retry_after = retry_after


def too_large(limit: int) -> Refused:
    return Refused(413, c.REASON_TOO_LARGE, BODY, f"body exceeds {limit} bytes (after decompression)")


async def read_body(receive: Receive, *, limit: int, gzipped: bool) -> bytes:
    """Read the request body; refuse above ``limit`` bytes, inflating at most ``limit + 1``.

    A gzip bomb is stopped after ``limit + 1`` output bytes: ``decompressobj``
    with ``max_length`` never produces more than asked, whatever the ratio.
    """
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
    raw_size = 0
    parts: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refused(400, c.REASON_MALFORMED, BODY, "client disconnected before the body ended")
        chunk: bytes = message.get("body", b"")
        more = bool(message.get("more_body", False))
        raw_size += len(chunk)
        if raw_size > limit:
            raise too_large(limit)
        if inflater is None:
            parts.append(chunk)
            continue
        data = chunk
        try:
            while data:
                out = inflater.decompress(data, limit - size + 1)
                size += len(out)
                if size > limit:
                    raise too_large(limit)
                parts.append(out)
                data = inflater.unconsumed_tail
        except zlib.error as exc:
            raise Refused(400, c.REASON_MALFORMED, BODY, f"invalid gzip data: {exc}") from None
    if inflater is not None and (not inflater.eof or inflater.unused_data):
        raise Refused(400, c.REASON_MALFORMED, BODY, "truncated gzip data or trailing bytes")
    return b"".join(parts) if len(parts) != 1 else parts[0]


def field_of(error: msgspec.ValidationError) -> str:
    """The JSON field path msgspec blames, without the ``$.`` prefix (``events[3].value_ms``)."""
    text = str(error)
    m = _PATH.search(text)
    path = m.group(1) if m else ""
    named = _MISSING.search(text)
    if named:
        name = named.group(1) or named.group(2)
        path = f"{path}.{name}" if path else name
    return path or BODY


def to_beacon(body: bytes, config: CollectorConfig, received_at: float) -> Beacon:
    """Decode, check and enrich one body received at ``received_at`` (unix seconds)."""
    try:
        wire = BEACON_DECODER.decode(body)
    except msgspec.ValidationError as exc:
        raise Refused(422, c.REASON_INVALID, field_of(exc), str(exc)) from None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise Refused(400, c.REASON_MALFORMED, BODY, f"not a JSON beacon: {exc}") from None
    n = len(wire.events)
    if n > MAX_EVENTS:
        raise Refused(
            422, c.REASON_TOO_MANY_EVENTS, "events", f"{n} events, at most {MAX_EVENTS}", events=n
        )
    # sentAt/receivedAt correction: the client's wall clock may be off by any
    # amount, but the offset is the same for ts and sent_at.
    skew = received_at - wire.sent_at
    oldest = received_at - config.max_event_age_s
    newest = received_at + config.max_future_s
    events: list[Event] = []
    append, error, unset = events.append, c.EVENT_ERROR, msgspec.UNSET
    for i, e in enumerate(wire.events):
        t = e.ts + skew
        # The common event (in range, no error, no class, its value present) is
        # built inline: this loop is the hot path. Anything else is checked in full.
        if (oldest <= t <= newest and e.type_ != error and e.class_ is unset
                and (e.value_ms is not None or e.type_ not in VALUE_EVENT_TYPES)):
            append(Event(e.type_, t, e.value_ms, False, ""))
        else:
            append(_checked_event(e, i, n, t, received_at, config))
    return Beacon(
        session_id=wire.session_id,
        seq=wire.seq,
        region=config.map_region(wire.region),
        kind=wire.kind,
        received_at=received_at,
        sent_at=wire.sent_at,
        events=events,
        sdk=wire.sdk,
        dim=config.map_dimension(wire.dimensions),
    )


def _checked_event(e: WireEvent, i: int, n: int, t: float, received_at: float, config: CollectorConfig) -> Event:
    """Event ``i`` at corrected time ``t``, or :class:`Refused` naming what is wrong with it.

    The checks in order: a value where its type needs one, the error class,
    then the time window (``max_event_age_s`` back, ``max_future_s`` ahead).
    """
    if e.value_ms is None and e.type_ in VALUE_EVENT_TYPES:
        raise Refused(
            422, c.REASON_INVALID, f"events[{i}].value_ms", f"required for type {e.type_}", events=n
        )
    error_class = _error_class(e, i, n)
    if t < received_at - config.max_event_age_s:
        raise Refused(
            422, c.REASON_EVENT_TOO_OLD, f"events[{i}].ts",
            f"event is {received_at - t:.0f} s old after clock correction, "
            f"at most {config.max_event_age_s:.0f} s accepted", events=n,
        )
    if t > received_at + config.max_future_s:
        raise Refused(
            422, c.REASON_EVENT_IN_FUTURE, f"events[{i}].ts",
            f"event is {t - received_at:.0f} s in the future after clock correction "
            f"(ts later than sent_at)", events=n,
        )
    return Event(e.type_, t, e.value_ms, error_class == c.ERROR_CLASS_FATAL, error_class)


def _error_class(e: WireEvent, i: int, n: int) -> str:
    """The class of event ``i`` (``conventions.ERROR_CLASS_*``; ``""`` for non-errors), or :class:`Refused`.

    ``class`` wins; without it ``fatal: true`` is fatal and ``fatal: false`` or
    no ``fatal`` a warning (v1's meaning, kept). Both sent and disagreeing, or
    ``class`` on another event type, is refused naming ``events[i].class``.
    """
    if e.type_ != c.EVENT_ERROR:
        if isinstance(e.class_, str):
            raise Refused(422, c.REASON_INVALID, f"events[{i}].class", "only error events have a class", events=n)
        return ""
    if not isinstance(e.class_, str):
        return c.ERROR_CLASS_FATAL if e.fatal is True else c.ERROR_CLASS_WARNING
    if isinstance(e.fatal, bool) and e.fatal != (e.class_ == c.ERROR_CLASS_FATAL):
        raise Refused(
            422, c.REASON_INVALID, f"events[{i}].class",
            f"class {e.class_} contradicts fatal {str(e.fatal).lower()}", events=n,
        )
    return e.class_
