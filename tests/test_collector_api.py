"""POST /v1/beacons: every status code and refusal reason, in process (InProcessExporter)."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from collector.app import create_app
from collector.config import CollectorConfig, ConfigError
from collector.exporters import ExporterUnavailable, InProcessExporter
from collector.schema import MAX_EVENTS
from slo import conventions as c
from slo.beacon import Beacon

KEY = "test-key-0123456789"
AUTH = {"x-ingest-key": KEY}


def good_beacon(**changes: Any) -> dict[str, Any]:
    """A valid beacon sent now; each test case changes one thing."""
    now = time.time()
    beacon: dict[str, Any] = {
        "v": 1, "session_id": "sess-1", "seq": 7, "sent_at": now, "region": "eu-west-1",
        "sdk": "web/1.4.0", "kind": "rum",
        "events": [
            {"type": "first_frame", "ts": now - 2, "value_ms": 182.4},
            {"type": "interaction", "ts": now - 1, "value_ms": 96.0, "name": "poll_vote"},
            {"type": "error", "ts": now - 0.5, "code": "MEDIA_ERR_NETWORK", "fatal": True},
        ],
    }
    beacon.update(changes)
    return beacon


def with_event(i: int, **changes: Any) -> dict[str, Any]:
    beacon = good_beacon()
    beacon["events"][i].update(changes)
    return beacon


class Harness:
    """One app with its own registry; ``seen`` collects exported beacons."""

    def __init__(self, sink: Callable[[Beacon], Any] | None = None, sink_timeout_s: float = 5.0,
                 **config: Any) -> None:
        self.seen: list[Beacon] = []
        self.registry = CollectorRegistry()
        defaults: dict[str, Any] = {"regions": ("eu-west-1", "us-east-1"), "keys": frozenset({KEY})}
        cfg = CollectorConfig(**{**defaults, **config})
        self.exporter = InProcessExporter(sink or self.seen.append, timeout_s=sink_timeout_s)
        self.app = create_app(cfg, self.exporter, self.registry)

    def post(self, body: bytes | str | dict[str, Any], headers: dict[str, str] | None = None,
             path: str = "/v1/beacons", method: str = "POST") -> httpx.Response:
        content = json.dumps(body) if isinstance(body, dict) else body
        return asyncio.run(self._request(method, path, content, headers))

    async def _request(self, method: str, path: str, content: Any, headers: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
            return await client.request(method, path, content=content, headers=headers)

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


def gzip_bomb(inflated: int) -> bytes:
    """``inflated`` zero bytes gzipped, built in chunks (never holding them in memory)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    parts = [z.compress(chunk) for _ in range(inflated // len(chunk))]
    return b"".join([*parts, z.flush()])


def gz(body: dict[str, Any]) -> bytes:
    return gzip.compress(json.dumps(body).encode())


ACCEPTED = [
    (good_beacon(), AUTH, "/v1/beacons"),
    (json.dumps(good_beacon()), {**AUTH, "content-type": "text/plain;charset=UTF-8"}, "/v1/beacons"),
    (gz(good_beacon()), {**AUTH, "content-encoding": "gzip"}, "/v1/beacons"),
    (good_beacon(), {}, f"/v1/beacons?key={KEY}"),
    (good_beacon(events=[{"type": "first_frame", "ts": time.time(), "value_ms": 0}]), AUTH, "/v1/beacons"),
    (good_beacon(kind="probe", region="mars-1"), AUTH, "/v1/beacons"),
]


@pytest.mark.parametrize(
    ("body", "headers", "path"), ACCEPTED,
    ids=[
        "a json beacon with a header key is accepted",
        "a text/plain beacon (navigator.sendBeacon) is accepted",
        "a gzip-compressed beacon is accepted",
        "a beacon with the key in the query string is accepted",
        "a zero latency is a valid measurement",
        "a probe beacon from an unlisted region is accepted",
    ],
)
def test_valid_beacons_get_202_after_export(body: Any, headers: dict[str, str], path: str) -> None:
    h = Harness()
    r = h.post(body, headers, path)
    assert r.status_code == 202, r.text
    assert len(h.seen) == 1
    assert r.json() == {"status": "accepted", "events": len(h.seen[0].events)}
    assert h.sample(c.METRIC_COLLECTOR_BEACONS, outcome=c.OUTCOME_ACCEPTED) == 1
    assert h.sample(c.METRIC_COLLECTOR_EVENTS, outcome=c.OUTCOME_ACCEPTED) == len(h.seen[0].events)


REFUSED = [
    (good_beacon(), {}, 401, c.REASON_UNAUTHORIZED, "key"),
    (good_beacon(), {"x-ingest-key": "wrong-key-0123456789"}, 401, c.REASON_UNAUTHORIZED, "key"),
    (b"x" * 2048, {**AUTH}, 413, c.REASON_TOO_LARGE, "body"),
    (gzip_bomb(4 << 20), {**AUTH, "content-encoding": "gzip"}, 413, c.REASON_TOO_LARGE, "body"),
    (b"\x1f\x8b\x08\x00garbage", {**AUTH, "content-encoding": "gzip"}, 400, c.REASON_MALFORMED, "body"),
    (gz(good_beacon())[:-6], {**AUTH, "content-encoding": "gzip"}, 400, c.REASON_MALFORMED, "body"),
    (b'{"v": 1, "session_id": ', AUTH, 400, c.REASON_MALFORMED, "body"),
    (b"\xff\xfe not utf-8", AUTH, 400, c.REASON_MALFORMED, "body"),
    (b'{"v":1,"session_id":"s","seq":1,"sent_at":1e9,"events":[{"type":"error","ts":NaN}]}', AUTH, 400, c.REASON_MALFORMED, "body"),
    (good_beacon(), {**AUTH, "content-type": "application/xml"}, 415, c.REASON_UNSUPPORTED_MEDIA, "content-type"),
    (good_beacon(), {**AUTH, "content-encoding": "br"}, 415, c.REASON_UNSUPPORTED_MEDIA, "content-encoding"),
    (with_event(0, value_ms=True), AUTH, 422, c.REASON_INVALID, "events[0].value_ms"),
    (good_beacon(seq=False), AUTH, 422, c.REASON_INVALID, "seq"),
    (with_event(1, value_ms=-1), AUTH, 422, c.REASON_INVALID, "events[1].value_ms"),
    (with_event(1, value_ms=1e9), AUTH, 422, c.REASON_INVALID, "events[1].value_ms"),
    (json.dumps(with_event(0)).replace("182.4", "1e400"), AUTH, 422, c.REASON_INVALID, "events[0].value_ms"),
    (with_event(1, value_ms=None), AUTH, 422, c.REASON_INVALID, "events[1].value_ms"),
    (with_event(2, type="rebuffer"), AUTH, 422, c.REASON_INVALID, "events[2].type"),
    (with_event(2, colour="red"), AUTH, 422, c.REASON_INVALID, "events[2].colour"),
    ({k: v for k, v in good_beacon().items() if k != "session_id"}, AUTH, 422, c.REASON_INVALID, "session_id"),
    (good_beacon(session_id="s" * 129), AUTH, 422, c.REASON_INVALID, "session_id"),
    (good_beacon(region="r" * 65), AUTH, 422, c.REASON_INVALID, "region"),
    (good_beacon(v=2), AUTH, 422, c.REASON_INVALID, "v"),
    (good_beacon(kind="bot"), AUTH, 422, c.REASON_INVALID, "kind"),
    (good_beacon(events=[]), AUTH, 422, c.REASON_INVALID, "events"),
    ('{"v":1,"session_id":"s","seq":1,"sent_at":1e9,"events":[' + "[" * 5000 + "]" * 5000 + "]}", AUTH, 422, c.REASON_INVALID, "events[0]"),
    ("[" * 100_000 + "]" * 100_000, AUTH, 422, c.REASON_INVALID, "body"),
    (good_beacon(events=[{"type": "error", "ts": time.time()}] * (MAX_EVENTS + 1)), AUTH, 422, c.REASON_TOO_MANY_EVENTS, "events"),
    (with_event(0, ts=time.time() - 7200), AUTH, 422, c.REASON_EVENT_TOO_OLD, "events[0].ts"),
    (with_event(2, ts=time.time() + 600), AUTH, 422, c.REASON_EVENT_IN_FUTURE, "events[2].ts"),
]


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason", "field"), REFUSED,
    ids=[
        "a missing ingest key is 401",
        "an unknown ingest key is 401",
        "a body over the cap is 413 before decoding",
        "a gzip body inflating over the cap is 413",
        "a corrupt gzip body is 400",
        "a truncated gzip body is 400",
        "truncated JSON is 400",
        "bytes that are not UTF-8 are 400",
        "a NaN literal is not JSON and is 400",
        "an XML content type is 415",
        "a brotli content encoding is 415",
        "true as value_ms is refused naming the event field",
        "false as seq is refused (no bool as number)",
        "a negative duration is refused",
        "a duration over ten minutes is refused",
        "an infinite duration is refused",
        "an interaction without value_ms is refused",
        "an unknown event type is refused",
        "an unknown event field is refused",
        "a missing session_id is refused",
        "a session_id over 128 characters is refused",
        "a region over 64 characters is refused",
        "wire version 2 is refused",
        "an unknown kind is refused",
        "a beacon without events is refused",
        "deep nesting inside events is refused at the first wrong container",
        "a 100k-deep array body is refused without recursion",
        "more events than the cap is refused with its own reason",
        "an event older than the age limit after clock correction is refused",
        "an event in the future after clock correction is refused",
    ],
)
def test_bad_requests_are_refused_naming_the_field(
    body: Any, headers: dict[str, str], status: int, reason: str, field: str
) -> None:
    h = Harness(max_body_bytes=1024 if status == 413 else 1 << 20)
    r = h.post(body, headers)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field
    assert r.json()["reason"] == reason
    assert h.seen == []
    assert h.sample(c.METRIC_COLLECTOR_REFUSED, reason=reason) == 1
    assert sum(h.sample(c.METRIC_COLLECTOR_REFUSED, reason=x) for x in c.REFUSAL_REASONS) == 1
    assert h.sample(c.METRIC_COLLECTOR_BEACONS, outcome=c.OUTCOME_REFUSED) == 1
    assert KEY not in r.text


def test_a_key_over_its_rate_gets_429_with_retry_after_and_others_are_unaffected() -> None:
    h = Harness(rate_per_key=0.5, burst_per_key=2, keys=frozenset({KEY, "other-key-0123456789"}))
    statuses = [h.post(good_beacon(seq=i), AUTH).status_code for i in range(3)]
    assert statuses == [202, 202, 429]
    r = h.post(good_beacon(seq=9), AUTH)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["reason"] == c.REASON_RATE_LIMITED
    assert h.post(good_beacon(), {"x-ingest-key": "other-key-0123456789"}).status_code == 202
    assert h.sample(c.METRIC_COLLECTOR_REFUSED, reason=c.REASON_RATE_LIMITED) == 2


def unavailable(_: Beacon) -> None:
    raise ExporterUnavailable("engine queue full")


async def too_slow(_: Beacon) -> None:
    await asyncio.sleep(5)


@pytest.mark.parametrize(
    ("sink", "timeout"), [(unavailable, 5.0), (too_slow, 0.05)],
    ids=["an exporter that is unavailable gives 503", "an exporter that does not acknowledge in time gives 503"],
)
def test_exporter_failures_are_503_with_retry_after(sink: Any, timeout: float) -> None:
    h = Harness(sink=sink, sink_timeout_s=timeout, retry_after_s=3)
    r = h.post(good_beacon(), AUTH)
    assert r.status_code == 503 and r.headers["retry-after"] == "3"
    assert h.sample(c.METRIC_COLLECTOR_BEACONS, outcome=c.OUTCOME_FAILED) == 1
    assert h.sample(c.METRIC_EXPORTER_FAILURES, exporter="in_process") == 1
    assert h.sample(c.METRIC_COLLECTOR_BEACONS, outcome=c.OUTCOME_ACCEPTED) == 0


def test_a_failing_sink_is_an_honest_500_counted_as_failed() -> None:
    def broken(_: Beacon) -> None:
        raise RuntimeError("engine bug")

    h = Harness(sink=broken)
    r = h.post(good_beacon(), AUTH)
    assert r.status_code == 500 and r.json()["reason"] == "internal"
    assert h.sample(c.METRIC_COLLECTOR_BEACONS, outcome=c.OUTCOME_FAILED) == 1


def test_event_time_is_corrected_for_client_clock_skew_and_region_mapped() -> None:
    h = Harness()
    now = time.time()
    skewed = good_beacon(sent_at=now - 1000, region="mars-1",
                         events=[{"type": "first_frame", "ts": now - 1003, "value_ms": 50}])
    assert h.post(skewed, AUTH).status_code == 202
    (b,) = h.seen
    assert b.region == c.REGION_OTHER
    assert abs((b.received_at - b.events[0].t) - 3.0) < 1e-6
    assert 0 <= b.received_at - now < 5


def test_a_gzip_bomb_of_50_mb_gets_413_with_bounded_memory() -> None:
    import tracemalloc

    bomb = gzip_bomb(50 << 20)
    assert len(bomb) <= 100_000
    h = Harness()  # default cap: 1 MiB
    tracemalloc.start()
    try:
        r = h.post(bomb, {**AUTH, "content-encoding": "gzip"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.status_code == 413
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize(
    ("origins", "origin", "expect"),
    [((), "https://app.example", None),
     (("https://app.example",), "https://app.example", "https://app.example"),
     (("https://app.example",), "https://evil.example", None)],
    ids=["by default no origin is allowed", "an allow-listed origin is echoed", "another origin is not"],
)
def test_cors_allow_list(origins: tuple[str, ...], origin: str, expect: str | None) -> None:
    h = Harness(cors_origins=origins)
    r = h.post(good_beacon(), {**AUTH, "origin": origin})
    assert r.status_code == 202
    assert r.headers.get("access-control-allow-origin") == expect
    pre = h.post("", {"origin": origin, "access-control-request-method": "POST"}, method="OPTIONS")
    assert pre.status_code == (204 if expect else 403)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "TRACE"], ids=lambda m: f"{m} on the ingest path is 405")
def test_other_methods_on_the_ingest_path_are_405(method: str) -> None:
    r = Harness().post("", AUTH, method=method)
    assert r.status_code == 405 and r.headers["allow"] == "POST, OPTIONS"


def test_a_non_ascii_query_key_is_401_not_a_server_error() -> None:
    r = Harness().post(good_beacon(), {}, path="/v1/beacons?key=%C3%A9%F0%9F%94%91")
    assert r.status_code == 401


def test_health_readiness_and_metrics_endpoints() -> None:
    h = Harness()
    assert h.post("", method="GET", path="/healthz").status_code == 200
    assert h.post("", method="GET", path="/readyz").status_code == 200
    asyncio.run(h.exporter.shutdown())
    r = h.post("", method="GET", path="/readyz")
    assert r.status_code == 503 and "retry-after" in r.headers
    text = h.post("", method="GET", path="/metrics").text
    for name in (c.METRIC_COLLECTOR_BEACONS, c.METRIC_COLLECTOR_REFUSED, c.METRIC_COLLECTOR_EVENTS,
                 c.METRIC_COLLECTOR_REQUEST_DURATION, c.METRIC_EXPORTER_DURATION, c.METRIC_EXPORTER_FAILURES):
        assert name.removesuffix("_total") in text


@pytest.mark.parametrize(
    "changes",
    [{"keys": frozenset()}, {"keys": frozenset({"short"})}, {"max_body_bytes": 10},
     {"regions": ("other",)}, {"rate_per_key": -1.0}],
    ids=["keys required but none configured", "a key shorter than 8 characters",
         "a body cap below 1 KiB", "other listed as a region", "a negative rate"],
)
def test_invalid_configs_are_rejected(changes: dict[str, Any]) -> None:
    cfg = CollectorConfig(**{"keys": frozenset({KEY}), **changes})
    with pytest.raises(ConfigError):
        cfg.validate()
