"""The public beacon wire format v1 (``docs/collector.md``) as msgspec types, and its JSON schema.

Use :data:`BEACON_DECODER` to parse a raw request body in one pass (types,
string lengths and ranges are checked while decoding); use
:func:`openapi_components` to publish the very same types in ``/openapi.json``,
so the documented schema cannot drift from what the decoder enforces.

Strictness is deliberate: unknown fields are refused (a typo such as
``value_MS`` fails loudly instead of silently dropping a measurement; new
fields come with a new ``v``), ``true`` is never accepted as a number, and
because every container's shape is fixed the JSON nesting depth of an
acceptable body is at most 3 (any deeper structure fails at its first
container).

>>> b = BEACON_DECODER.decode(b'{"v":1,"session_id":"s","seq":1,"sent_at":1.5e9,'
...     b'"region":"eu-west-1","events":[{"type":"first_frame","ts":1.5e9,"value_ms":120}]}')
>>> b.events[0].value_ms
120.0
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from slo import conventions as c
from slo.limits import (
    MAX_DIMENSIONS,
    MAX_EVENTS,
    MAX_LABEL,
    MAX_SEQ,
    MAX_SESSION_ID,
    MAX_UNIX_S,
    MAX_VALUE_MS,
)

# The caps of the public contract (they appear in the OpenAPI schema) live in
# slo/limits.py: stage 1 enforces them again on Kafka records.

EventType = Literal[
    "first_frame", "interaction", "error", "exit_before_start", "stall", "playing", "live_latency"
]
ErrorClass = Literal["fatal", "warning", "business"]
# Event types whose value_ms is the measurement itself, so it is required.
VALUE_EVENT_TYPES = frozenset({
    c.EVENT_FIRST_FRAME, c.EVENT_INTERACTION, c.EVENT_STALL, c.EVENT_PLAYING, c.EVENT_LIVE_LATENCY,
})

UnixSeconds = Annotated[float, Meta(gt=0, le=MAX_UNIX_S, description="unix seconds, wall clock")]
Label = Annotated[str, Meta(max_length=MAX_LABEL)]
Dimensions = Annotated[
    dict[Label, Label],
    Meta(
        max_length=MAX_DIMENSIONS,
        description="extra dimensions such as {\"cdn\": \"fastly\"}; the collector keeps the "
        "spec's one dimension (values outside its allow-list become \"other\") and ignores the rest",
    ),
]


class WireEvent(
    msgspec.Struct, forbid_unknown_fields=True, rename={"type_": "type", "class_": "class"}, gc=False
):
    """One player event as sent by an SDK."""

    # class and fatal are UNSET when absent, so collector/validation.py can tell
    # a contradiction (class fatal with fatal false) from a default.

    type_: EventType
    ts: UnixSeconds
    value_ms: (
        Annotated[
            float,
            Meta(
                ge=0,
                le=MAX_VALUE_MS,
                description="milliseconds on the client's monotonic clock; required for "
                "first_frame, interaction, stall (the episode), playing (played since the "
                "previous playing event) and live_latency (behind the live edge)",
            ),
        ]
        | None
    ) = None
    name: Label | None = None
    code: Label | None = None
    class_: (
        Annotated[
            ErrorClass,
            Meta(description="error events only: fatal counts against the SLO, warning is "
                 "counted apart, business (geo-block, entitlement) is no attempt and no error"),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    fatal: (
        Annotated[bool, Meta(description="v1's error class: true is fatal, false (the default) "
                             "a warning; must agree with class when both are sent")]
        | msgspec.UnsetType
    ) = msgspec.UNSET


class WireBeacon(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One beacon (a batch of events of one session), ``POST /v1/beacons`` body."""

    v: Literal[1]
    session_id: Annotated[str, Meta(min_length=1, max_length=MAX_SESSION_ID)]
    seq: Annotated[int, Meta(ge=0, le=MAX_SEQ)]
    sent_at: UnixSeconds
    # The events cap is checked after decoding so it gets its own refusal
    # reason; the schema still states it.
    events: Annotated[
        list[WireEvent], Meta(min_length=1, extra_json_schema={"maxItems": MAX_EVENTS})
    ]
    region: Label = ""
    sdk: Label = ""
    kind: Literal["rum", "probe"] = c.KIND_RUM
    dimensions: Dimensions = msgspec.field(default_factory=dict)


class Accepted(msgspec.Struct):
    """Body of a 202: the beacon was acknowledged by the exporter."""

    status: Literal["accepted"]
    events: int


class Refusal(msgspec.Struct):
    """Body of every 4xx/503: what was refused and which field caused it."""

    error: str
    field: str
    reason: str


# gc=False (above): a decoded beacon holds only scalars, strings, a list of events
# and a dict of strings, so it can never be part of a reference cycle; untracked, its 21 structs per request
# no longer count towards the garbage collector's next young-generation pass.
BEACON_DECODER = msgspec.json.Decoder(WireBeacon)
ENCODER = msgspec.json.Encoder()


def openapi_components() -> dict[str, Any]:
    """JSON schemas of the wire types, keyed by name, with OpenAPI ``$ref`` paths."""
    _, components = msgspec.json.schema_components(
        [WireBeacon, Accepted, Refusal], ref_template="#/components/schemas/{name}"
    )
    return components
