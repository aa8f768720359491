"""Wire format v1 for the QoE SLIs (issue 16), through the real app: new event types, error classes, dimensions.

Every case posts one beacon to an in-process collector (httpx ASGITransport,
InProcessExporter) and checks either the enriched beacon it exported or the
422 it answered, with the field named and the refusal counted as ``invalid``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from collector.config import CollectorConfig
from slo import conventions as c
from slo.beacon import Event
from slo.limits import MAX_DIMENSIONS, MAX_LABEL, MAX_VALUE_MS
from slo.model import Dimension
from slo.spec import load_spec
from tests.test_collector_api import AUTH, Harness

CDN = Dimension(name="cdn", values=("akamai", "fastly"), slis=(c.SLI_TTFF, c.SLI_REBUFFERING))


def beacon(*events: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A valid beacon sent now holding ``events`` (each given without its ``ts``)."""
    now = time.time()
    body: dict[str, Any] = {
        "v": 1, "session_id": "sess-q", "seq": 1, "sent_at": now, "region": "eu-west-1",
        "events": [{"ts": now - 1, **e} for e in events],
    }
    body.update(fields)
    return body


def accepted(body: dict[str, Any], **config: Any) -> tuple[list[Event], str]:
    """Post ``body``; the exported beacon's events and ``dim`` (the post must be a 202)."""
    h = Harness(**config)
    r = h.post(body, AUTH)
    assert r.status_code == 202, r.text
    (exported,) = h.seen
    return exported.events, exported.dim


def refused(body: dict[str, Any], field: str, **config: Any) -> str:
    """Post ``body``; assert a 422 naming ``field``, counted once as invalid; the message."""
    h = Harness(**config)
    r = h.post(body, AUTH)
    assert r.status_code == 422, r.text
    assert (r.json()["field"], r.json()["reason"]) == (field, c.REASON_INVALID)
    assert h.seen == []
    assert h.sample(c.METRIC_COLLECTOR_REFUSED, reason=c.REASON_INVALID) == 1
    assert h.sample(c.METRIC_COLLECTOR_BEACONS, outcome=c.OUTCOME_REFUSED) == 1
    message: str = r.json()["error"]
    return message


VALID_EVENTS = [
    pytest.param({"type": "stall", "value_ms": 1500}, 1500.0, id="a stall carries its episode's duration"),
    pytest.param({"type": "stall", "value_ms": 0}, 0.0, id="a stall of 0 ms is valid"),
    pytest.param({"type": "playing", "value_ms": 10_000}, 10_000.0, id="a playing heartbeat carries the time played"),
    pytest.param({"type": "live_latency", "value_ms": 4200}, 4200.0, id="live_latency carries the distance to the live edge"),
    pytest.param({"type": "live_latency", "value_ms": MAX_VALUE_MS}, MAX_VALUE_MS, id="live_latency up to the value cap is valid"),
    pytest.param({"type": "exit_before_start", "value_ms": 3000}, 3000.0, id="an exit before start may say how long the viewer waited"),
    pytest.param({"type": "exit_before_start"}, None, id="an exit before start needs no value"),
]


@pytest.mark.parametrize(("event", "value_ms"), VALID_EVENTS)
def test_each_new_event_type_is_accepted_with_its_value(event: dict[str, Any], value_ms: float | None) -> None:
    (exported,), _ = accepted(beacon(event))
    assert (exported.type, exported.value_ms, exported.fatal, exported.error_class) == (
        event["type"], value_ms, False, "",
    )


INVALID_EVENTS = [
    pytest.param({"type": "stall"}, "events[0].value_ms", id="a stall without value_ms is refused"),
    pytest.param({"type": "playing"}, "events[0].value_ms", id="a playing heartbeat without value_ms is refused"),
    pytest.param({"type": "live_latency"}, "events[0].value_ms", id="live_latency without value_ms is refused"),
    pytest.param({"type": "stall", "value_ms": -1}, "events[0].value_ms", id="a negative stall is refused"),
    pytest.param({"type": "playing", "value_ms": MAX_VALUE_MS + 1}, "events[0].value_ms",
                 id="a heartbeat over the value cap is refused"),
    pytest.param({"type": "live_latency", "value_ms": True}, "events[0].value_ms", id="true is not a live latency"),
    pytest.param({"type": "rebuffer", "value_ms": 10}, "events[0].type", id="an unknown event type is refused"),
    pytest.param({"type": "stall", "value_ms": 10, "class": "fatal"}, "events[0].class",
                 id="a class on a stall is refused"),
]


@pytest.mark.parametrize(("event", "field"), INVALID_EVENTS)
def test_an_invalid_new_event_is_refused_naming_its_field(event: dict[str, Any], field: str) -> None:
    refused(beacon(event), field)


ERROR_CLASSES = [
    pytest.param({}, c.ERROR_CLASS_WARNING, id="an error with neither class nor fatal is a warning, as in v1"),
    pytest.param({"fatal": True}, c.ERROR_CLASS_FATAL, id="an old fatal true error is fatal"),
    pytest.param({"fatal": False}, c.ERROR_CLASS_WARNING, id="an old fatal false error is a warning"),
    pytest.param({"class": "fatal"}, c.ERROR_CLASS_FATAL, id="class fatal is fatal"),
    pytest.param({"class": "warning"}, c.ERROR_CLASS_WARNING, id="class warning is a warning"),
    pytest.param({"class": "business"}, c.ERROR_CLASS_BUSINESS, id="class business is business"),
    pytest.param({"class": "fatal", "fatal": True}, c.ERROR_CLASS_FATAL, id="class fatal agrees with fatal true"),
    pytest.param({"class": "warning", "fatal": False}, c.ERROR_CLASS_WARNING, id="class warning agrees with fatal false"),
    pytest.param({"class": "business", "fatal": False}, c.ERROR_CLASS_BUSINESS, id="class business agrees with fatal false"),
]


@pytest.mark.parametrize(("fields", "error_class"), ERROR_CLASSES)
def test_an_errors_class_is_resolved_and_written_on_the_record(fields: dict[str, Any], error_class: str) -> None:
    (exported,), _ = accepted(beacon({"type": "error", "code": "E1", **fields}))
    assert exported.error_class == error_class
    assert exported.fatal is (error_class == c.ERROR_CLASS_FATAL)
    assert exported.resolved_class == error_class


CONTRADICTIONS = [
    pytest.param({"class": "fatal", "fatal": False}, "contradicts fatal false", id="class fatal with fatal false is refused"),
    pytest.param({"class": "warning", "fatal": True}, "contradicts fatal true", id="class warning with fatal true is refused"),
    pytest.param({"class": "business", "fatal": True}, "contradicts fatal true", id="class business with fatal true is refused"),
    pytest.param({"class": "minor"}, "Invalid enum value", id="an unknown class is refused"),
    pytest.param({"class": None}, "got `null`", id="a null class is refused"),
    pytest.param({"fatal": None}, "got `null`", id="a null fatal is refused"),
]


@pytest.mark.parametrize(("fields", "message"), CONTRADICTIONS)
def test_a_bad_or_contradicting_class_is_refused_naming_it(fields: dict[str, Any], message: str) -> None:
    field = "events[1].fatal" if "fatal" in fields and "class" not in fields else "events[1].class"
    first_frame = {"type": "first_frame", "value_ms": 120}
    assert message in refused(beacon(first_frame, {"type": "error", **fields}), field)


DIMENSIONS = [
    pytest.param({"cdn": "fastly"}, CDN, "fastly", id="an allow-listed value is kept"),
    pytest.param({"cdn": "edgio"}, CDN, c.REGION_OTHER, id="a value outside the allow-list is other"),
    pytest.param({"cdn": "Fastly"}, CDN, c.REGION_OTHER, id="the allow-list is case-sensitive"),
    pytest.param(None, CDN, c.REGION_OTHER, id="a beacon without dimensions is other"),
    pytest.param({}, CDN, c.REGION_OTHER, id="empty dimensions are other"),
    pytest.param({"platform": "web"}, CDN, c.REGION_OTHER, id="only other keys is other"),
    pytest.param({"platform": "web", "cdn": "akamai"}, CDN, "akamai", id="keys other than the spec's are ignored"),
    pytest.param({"cdn": "fastly"}, None, "", id="without a dimension in the spec the record carries none"),
    pytest.param({f"k{i}": "v" for i in range(MAX_DIMENSIONS)}, CDN, c.REGION_OTHER,
                 id="as many entries as the cap are accepted"),
]


@pytest.mark.parametrize(("dimensions", "dimension", "dim"), DIMENSIONS)
def test_the_specs_dimension_is_mapped_onto_its_allow_list(
    dimensions: dict[str, str] | None, dimension: Dimension | None, dim: str
) -> None:
    fields = {} if dimensions is None else {"dimensions": dimensions}
    _, exported_dim = accepted(beacon({"type": "first_frame", "value_ms": 90}, **fields), dimension=dimension)
    assert exported_dim == dim


BAD_DIMENSIONS = [
    pytest.param({"cdn": "x" * (MAX_LABEL + 1)}, id="a value over 64 characters is refused"),
    pytest.param({"x" * (MAX_LABEL + 1): "fastly"}, id="a key over 64 characters is refused"),
    pytest.param({f"k{i}": "v" for i in range(MAX_DIMENSIONS + 1)}, id="more entries than the cap are refused"),
    pytest.param({"cdn": 7}, id="a value that is not a string is refused"),
    pytest.param(["cdn", "fastly"], id="dimensions that are not an object are refused"),
]


@pytest.mark.parametrize("dimensions", BAD_DIMENSIONS)
def test_bad_dimensions_are_refused_naming_dimensions(dimensions: Any) -> None:
    refused(beacon({"type": "first_frame", "value_ms": 90}, dimensions=dimensions), "dimensions", dimension=CDN)


def test_an_old_beacon_keeps_its_meaning_end_to_end() -> None:
    """A v1 beacon of before issue 16 (fatal only, no class, no dimensions) exports what it did."""
    events, dim = accepted(beacon(
        {"type": "first_frame", "value_ms": 180},
        {"type": "error", "code": "NET", "fatal": True},
        {"type": "error", "code": "DECODE"},
        {"type": "exit_before_start"},
    ))
    assert [(e.type, e.fatal, e.error_class) for e in events] == [
        ("first_frame", False, ""),
        ("error", True, c.ERROR_CLASS_FATAL),
        ("error", False, c.ERROR_CLASS_WARNING),
        ("exit_before_start", False, ""),
    ]
    assert dim == ""


def test_the_openapi_document_publishes_the_new_fields() -> None:
    doc = Harness().post("", path="/openapi.json", method="GET").json()
    schemas = doc["components"]["schemas"]
    event = schemas["WireEvent"]["properties"]
    assert {c.EVENT_STALL, c.EVENT_PLAYING, c.EVENT_LIVE_LATENCY, c.EVENT_EXIT_BEFORE_START} <= set(event["type"]["enum"])
    assert sorted(event["class"]["enum"]) == sorted(c.ERROR_CLASSES)
    assert event["fatal"]["type"] == "boolean"
    dimensions = schemas["WireBeacon"]["properties"]["dimensions"]
    assert (dimensions["maxProperties"], dimensions["additionalProperties"]["maxLength"]) == (MAX_DIMENSIONS, MAX_LABEL)


def test_the_distributed_collector_takes_its_dimension_from_the_spec() -> None:
    spec, _ = load_spec(Path(__file__).parent / "specs" / "qoe.yaml")
    config = CollectorConfig.from_spec(spec, env={})
    assert config.dimension == spec.dimension
    assert (config.map_dimension({"cdn": "fastly"}), config.map_dimension({"cdn": "edgio"})) == ("fastly", c.REGION_OTHER)
