"""The published OpenAPI schema and fuzzing: no input yields a server error."""

from __future__ import annotations

import asyncio
import gzip
import time
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from collector.app import create_app
from collector.config import CollectorConfig
from collector.exporters import InProcessExporter
from collector.schema import BEACON_DECODER, ENCODER, WireBeacon

KEY = "fuzz-key-0123456789"


def make_app() -> Any:
    return create_app(
        CollectorConfig(regions=("eu-west-1",), keys=frozenset({KEY}), rate_per_key=0),
        InProcessExporter(lambda beacon: None),
        CollectorRegistry(),
    )


# schemathesis runs the app's lifespan (which shuts the exporter down at the
# end), so the hypothesis test below gets an app of its own.
APP = make_app()
GARBAGE_APP = make_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_finds_no_server_error_and_responses_match_the_schema(case: Any) -> None:
    case.call_and_validate()


def test_the_published_body_schema_is_the_decoders_schema() -> None:
    import msgspec

    doc = APP.openapi()
    published = doc["components"]["schemas"]["WireBeacon"]
    _, components = msgspec.json.schema_components([WireBeacon], ref_template="#/components/schemas/{name}")
    assert published == components["WireBeacon"]
    body = doc["paths"]["/v1/beacons"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/WireBeacon"}
    assert "text/plain" in body


async def _post(content: bytes, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=GARBAGE_APP)
    async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
        return await client.post("/v1/beacons", content=content, headers=headers)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=30,
)


def _near_valid(draw: Any) -> bytes:
    """A valid beacon with one field replaced by arbitrary JSON: exercises deep validation."""
    now = time.time()
    beacon: dict[str, Any] = {"v": 1, "session_id": "s", "seq": 1, "sent_at": now,
                              "events": [{"type": "first_frame", "ts": now, "value_ms": 1.0}]}
    target = draw(st.sampled_from(["v", "session_id", "seq", "sent_at", "events", "region", "kind", "ev"]))
    value = draw(JSONISH)
    if target == "ev":
        beacon["events"][0][draw(st.sampled_from(["type", "ts", "value_ms", "fatal", "x"]))] = value
    else:
        beacon[target] = value
    return ENCODER.encode(beacon)


@st.composite
def garbage_bodies(draw: Any) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "near_valid"]))
    if kind == "bytes":
        return bytes(draw(st.binary(max_size=300)))
    if kind == "json":
        return ENCODER.encode(draw(JSONISH))
    return _near_valid(draw)


@given(body=garbage_bodies(), gzipped=st.booleans(),
       ctype=st.sampled_from(["application/json", "text/plain", "", "application/x-nope"]))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_garbage_bodies_never_yield_a_server_error(body: bytes, gzipped: bool, ctype: str) -> None:
    headers = {"x-ingest-key": KEY, "content-type": ctype}
    if gzipped:
        body, headers["content-encoding"] = gzip.compress(body), "gzip"
    r = asyncio.run(_post(body, headers))
    assert r.status_code < 500, r.text
    if r.status_code == 202:
        BEACON_DECODER.decode(gzip.decompress(body) if gzipped else body)  # really was valid
    else:
        assert set(r.json()) == {"error", "field", "reason"}
