"""Tracing wired into the pipeline: one beacon's spans from ingest through Kafka to stage 2.

The collector's spans go to an in-memory exporter on a provider of the test's
own (never the process globals); the collector is the real app (httpx ASGI
transport, its lifespan run). Kafka is the real broker of
``tests/fixtures_kafka.py``. The end-to-end test runs a real ``streamslo
worker`` subprocess exporting OTLP/HTTP to ``streamslo.testing.otlp_sink`` at 1 %
sampling: the beacon's stage-1 batch span links to its producer span, and the
stage-2 merge span links to that stage-1 span.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry

from collector.app import create_app
from collector.config import CollectorConfig
from collector.exporters import ExporterUnavailable, InProcessExporter, KafkaExporter
from slo import beacon as codec
from slo import conventions as c
from slo import partial as partial_codec
from slo.beacon import Beacon, Event
from slo.partial import Partial
from slo.spec import load_spec
from slo.stage1 import Stage1
from slo.stage2 import Stage2
from slo.stream.app import apply_bundle
from slo.stream.topics import STAGE1_GROUP, partition_for
from slo.telemetry import OFF, LinkSet, Tracing, setup_tracing
from slo.telemetry import names as tn
from streamslo.testing.otlp_sink import OtlpSink, ReceivedSpan
from streamslo.testing.stream import Worker
from streamslo.testing.stream import wait_until as wait_until_sync
from tests.telemetry_sdk_spans import ingest_span, kafka_headers, produce_span
from tests.test_collector_kafka import read_topic, wait_until

KEY = "test-key-0123456789"


class Spans:
    """A provider of the test's own with a synchronous in-memory exporter."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        provider = setup_tracing("test-tracing-e2e", exporter=self.exporter, env=env or {},
                                 install=False, batch=False)
        assert provider is not None
        self.provider = provider
        self.tr = Tracing.from_provider(provider)

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, [s.name for s in self.exporter.get_finished_spans()]
        return found[0]


@pytest.fixture
def spans() -> Iterator[Spans]:
    s = Spans()
    yield s
    s.provider.shutdown()


def beacon_body(session: str = "sess-trace", seq: int = 1, **changes: Any) -> dict[str, Any]:
    now = time.time()
    body: dict[str, Any] = {
        "v": 1, "session_id": session, "seq": seq, "sent_at": now, "region": "eu-west-1",
        "kind": "rum",
        "events": [{"type": "first_frame", "ts": now - 1, "value_ms": 120.0},
                   {"type": "interaction", "ts": now - 0.5, "value_ms": 80.0},
                   {"type": "error", "ts": now, "fatal": True}],
    }
    body.update(changes)
    return body


@asynccontextmanager
async def running(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run (the tracer is installed there), and a client."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
            yield client


# --- collector, in process ------------------------------------------------------------


def _unavailable(beacon: Beacon) -> None:
    raise ExporterUnavailable("engine queue full")


INGEST_CASES = [
    # (body, headers, sink, status, outcome, reason, events)
    (beacon_body(), {"x-ingest-key": KEY}, None, 202, c.OUTCOME_ACCEPTED, None, 3),
    (beacon_body(), {}, None, 401, c.OUTCOME_REFUSED, c.REASON_UNAUTHORIZED, 0),
    (beacon_body(v=2), {"x-ingest-key": KEY}, None, 422, c.OUTCOME_REFUSED, c.REASON_INVALID, 0),
    (beacon_body(), {"x-ingest-key": KEY}, _unavailable, 503, c.OUTCOME_FAILED, "unavailable", 3),
]


@pytest.mark.parametrize(
    ("body", "headers", "sink", "status", "outcome", "reason", "events"), INGEST_CASES,
    ids=["an accepted beacon records its event count and outcome accepted",
         "a request without a key records a refusal with reason and status 401",
         "an invalid beacon records a refusal with reason invalid and status 422",
         "an exporter that pushes back records a failure with status 503 and an error status"])
async def test_each_ingest_request_gets_one_server_span_with_its_outcome(
    spans: Spans, body: dict[str, Any], headers: dict[str, str], sink: Any, status: int,
    outcome: str, reason: str | None, events: int,
) -> None:
    seen: list[Beacon] = []
    cfg = CollectorConfig(regions=("eu-west-1",), keys=frozenset({KEY}))
    app = create_app(cfg, InProcessExporter(sink or seen.append), CollectorRegistry(), tracer=spans.tr)
    async with running(app) as client:
        r = await client.post("/v1/beacons", json=body, headers=headers)
    assert r.status_code == status, r.text
    span = spans.one(tn.SPAN_INGEST)
    attrs = dict(span.attributes or {})
    assert span.kind is SpanKind.SERVER and span.parent is None
    assert attrs[tn.ATTR_BEACONS] == 1
    assert attrs[tn.ATTR_EVENTS] == events
    assert attrs[tn.ATTR_OUTCOME] == outcome
    assert attrs.get(tn.ATTR_REASON) == reason
    assert attrs.get(tn.HTTP_STATUS) == (None if status == 202 else status)
    assert (span.status.status_code is StatusCode.ERROR) == (status >= 500)
    # An in-process hand-off is not a Kafka send: no producer span.
    assert [s.name for s in spans.exporter.get_finished_spans()] == [tn.SPAN_INGEST]


async def test_with_tracing_off_the_collector_builds_no_span_and_still_accepts(spans: Spans) -> None:
    seen: list[Beacon] = []
    app = create_app(CollectorConfig(require_key=False), InProcessExporter(seen.append),
                     CollectorRegistry(), tracer=OFF)
    async with running(app) as client:
        r = await client.post("/v1/beacons", json=beacon_body())
    assert r.status_code == 202 and len(seen) == 1
    assert app.ingest.tr is OFF  # type: ignore[attr-defined]
    assert spans.exporter.get_finished_spans() == ()


# --- collector -> real Kafka ------------------------------------------------------------


def traceparent(span: ReadableSpan) -> bytes:
    ctx = span.get_span_context()
    assert ctx is not None
    assert ctx.trace_flags.sampled
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}".encode()


async def post_to_kafka(bootstrap: str, topic: str, tr: Tracing, body: dict[str, Any]) -> list[Any]:
    """POST ``body`` to a collector producing to ``topic``; return the records on the topic."""
    exporter = KafkaExporter(bootstrap, topic, probe_interval_s=0.5, send_timeout_s=5.0)
    app = create_app(CollectorConfig(regions=("eu-west-1",), require_key=False), exporter,
                     CollectorRegistry(), tracer=tr)
    async with running(app) as client:
        await wait_until(exporter.ready, 30, "the exporter to connect")
        r = await client.post("/v1/beacons", json=body)
        assert r.status_code == 202, r.text
    return await read_topic(bootstrap, topic)


@pytest.mark.kafka
@pytest.mark.parametrize(
    ("env", "sampled"),
    [({}, True), ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, False)],
    ids=["a sampled request puts its producer span's traceparent in the Kafka message",
         "an unsampled request builds no span and sends no trace header"])
async def test_the_produce_span_context_crosses_kafka_in_the_message_headers(
    kafka_broker: Any, env: dict[str, str], sampled: bool,
) -> None:
    s = Spans(env)
    try:
        topic = f"beacons-trace-{uuid.uuid4().hex[:8]}"
        records = await post_to_kafka(kafka_broker.bootstrap, topic, s.tr, beacon_body("sess-k", 5))
    finally:
        s.provider.shutdown()
    assert len(records) == 1
    rec = records[0]
    assert [b.session_id for b in codec.decode_record(rec.value)] == ["sess-k"]
    if not sampled:
        assert s.exporter.get_finished_spans() == ()
        assert not rec.headers
        return
    ingest, send = s.one(tn.SPAN_INGEST), s.one(tn.produce_span_name(topic))
    assert send.kind is SpanKind.PRODUCER
    assert send.parent is not None and send.parent.span_id == ingest.context.span_id
    assert send.context.trace_id == ingest.context.trace_id
    assert dict(send.attributes or {}) == {
        tn.MESSAGING_SYSTEM: tn.MESSAGING_SYSTEM_KAFKA, tn.MESSAGING_DESTINATION: topic,
        tn.MESSAGING_OPERATION_NAME: tn.OPERATION_SEND, tn.MESSAGING_KAFKA_KEY: "sess-k"}
    assert dict(ingest.attributes or {})[tn.ATTR_OUTCOME] == c.OUTCOME_ACCEPTED
    assert list(rec.headers) == [(tn.HEADER_TRACEPARENT, traceparent(send))]


# --- stage 2, in process -----------------------------------------------------------------


def stage1_partials(trace_links: bytes) -> list[Partial]:
    """Real partials: one beacon through :class:`Stage1`, cut, with ``trace_links`` set."""
    spec, _ = load_spec()
    stage1 = Stage1(spec)
    now = time.time()
    stage1.begin("beacons/0", -1)
    stage1.add(Beacon("s", 1, "eu-west-1", "rum", now, now,
                      [Event("first_frame", now - 1, 120.0), Event("interaction", now, 80.0)]), "beacons/0", 0)
    parts = stage1.flush("beacons/0", now)
    assert parts
    return [Partial(**{**{f: getattr(p, f) for f in p.__struct_fields__}, "trace_links": trace_links})
            for p in parts]


def test_the_stage2_merge_span_links_to_the_stage1_spans_its_partials_carry(spans: Spans) -> None:
    # A sampled stage-1 batch span, as the runner builds it from a message's traceparent.
    with ingest_span(spans.tr) as ingest, produce_span(spans.tr, c.TOPIC_BEACONS, parent=ingest) as send:
        headers = kafka_headers(send)
    with spans.tr.process_batch([headers, []], c.TOPIC_BEACONS, partition=0, group=STAGE1_GROUP) as batch:
        links = LinkSet()
        assert links.add_span(batch)
    bundle = stage1_partials(links.encode())
    stage2 = Stage2(load_spec()[0])
    assert apply_bundle(stage2, spans.tr, "eu-west-1", bundle) is True
    assert apply_bundle(stage2, spans.tr, "eu-west-1", bundle) is False  # a replay: skipped
    first, replay = spans.named(tn.SPAN_MERGE)
    stage1 = spans.one(tn.process_span_name(c.TOPIC_BEACONS))
    assert [lk.context.span_id for lk in stage1.links] == [send.get_span_context().span_id]
    for span, skipped in ((first, False), (replay, True)):
        assert span.kind is SpanKind.CONSUMER and span.parent is None
        # The bundle's partials repeat the same link: linked once.
        assert [(lk.context.trace_id, lk.context.span_id) for lk in span.links] == [
            (stage1.context.trace_id, stage1.context.span_id)]
        assert dict(span.attributes or {}) == {
            tn.ATTR_STAGE: 2, tn.ATTR_REGION: "eu-west-1", tn.ATTR_PARTIAL_LINKS: 1,
            tn.ATTR_PARTIAL_SOURCE: "beacons/0", tn.ATTR_PARTIAL_LO: -1, tn.ATTR_PARTIAL_HI: 0,
            tn.ATTR_PARTIAL_SKIPPED: skipped}


def test_partials_written_before_trace_links_existed_still_decode() -> None:
    new = stage1_partials(b"")[0]
    old = {f: getattr(new, f) for f in new.__struct_fields__ if f != "trace_links"}
    decoded = partial_codec.decode(msgspec.msgpack.encode(old))
    assert decoded == new and decoded.trace_links == b""


# --- the whole path: collector -> real Kafka -> real worker (both stages) -> OTLP -------------


def linked(span: ReceivedSpan, trace_id: int, span_id: int) -> bool:
    return (f"{trace_id:032x}", f"{span_id:016x}") in span.links


@pytest.mark.kafka
def test_one_beacon_is_traced_from_ingest_through_kafka_to_both_stages_of_a_real_worker(
    kafka_broker_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = kafka_broker_factory()  # its own: the worker's groups and topics start empty
    with OtlpSink() as sink:
        # The worker inherits these: 1 % sampling, as in production; spans exported every 0.2 s.
        for k, v in {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
                     "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                     "OTEL_TRACES_SAMPLER_ARG": "0.01", "OTEL_BSP_SCHEDULE_DELAY": "200"}.items():
            monkeypatch.setenv(k, v)
        worker = Worker(broker.bootstrap, tmp_path, "w1", "--flush-interval", "0.5").start()
        collector = Spans()  # the collector samples everything; downstream follows its decision
        try:
            wait_until_sync(lambda: bool(worker.scrape()), 60, "the worker's /metrics")
            records = asyncio.run(post_to_kafka(broker.bootstrap, c.TOPIC_BEACONS, collector.tr,
                                                beacon_body("sess-e2e", 1)))
            send = collector.one(tn.produce_span_name(c.TOPIC_BEACONS))
            ctx = send.get_span_context()
            assert ctx is not None

            def stage1_spans() -> list[ReceivedSpan]:
                return [s for s in sink.spans if s.name == tn.process_span_name(c.TOPIC_BEACONS)
                        and linked(s, ctx.trace_id, ctx.span_id)]

            def merges() -> list[ReceivedSpan]:
                return [m for m in sink.spans if m.name == tn.SPAN_MERGE
                        for s in stage1_spans() if (s.trace_id, s.span_id) in m.links]

            wait_until_sync(lambda: bool(merges()), 60, "a merge span linked to the beacon's stage-1 span",
                            step=0.2)
        finally:
            worker.stop()
            collector.provider.shutdown()
    # The message carried the producer span's context.
    assert [dict(r.headers).get(tn.HEADER_TRACEPARENT) for r in records] == [traceparent(send)]
    partition = partition_for(b"sess-e2e", 8)
    assert records[0].partition == partition
    (stage1,) = stage1_spans()
    assert stage1.service == "streamslo-worker" and stage1.kind == 5 and stage1.parent_span_id == ""
    assert stage1.attributes[tn.MESSAGING_DESTINATION] == c.TOPIC_BEACONS
    assert stage1.attributes[tn.MESSAGING_PARTITION] == str(partition)
    assert stage1.attributes[tn.MESSAGING_CONSUMER_GROUP] == STAGE1_GROUP
    assert stage1.attributes[tn.ATTR_BATCH_SAMPLED] == 1
    merge = merges()[0]
    assert merge.service == "streamslo-worker" and merge.kind == 5
    assert merge.attributes[tn.ATTR_REGION] == "eu-west-1"
    assert merge.attributes[tn.ATTR_PARTIAL_SOURCE] == f"{c.TOPIC_BEACONS}/{partition}"
    assert merge.attributes[tn.ATTR_PARTIAL_HI] == records[0].offset
    assert merge.attributes[tn.ATTR_PARTIAL_SKIPPED] is False
    # The ingest span's trace is the one the stage-1 span links into.
    assert stage1.links == ((f"{collector.one(tn.SPAN_INGEST).context.trace_id:032x}",
                             f"{ctx.span_id:016x}"),)
