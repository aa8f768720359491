"""Tracing helpers: the beacon's trace from ingest through Kafka headers to stage 2, in memory."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import msgspec
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanContext, SpanKind, StatusCode, TraceFlags

from slo import conventions as c
from slo import partial as partial_mod
from slo import telemetry as t
from slo.partial import Partial
from slo.telemetry import names as n
from tests.telemetry_sdk_spans import ingest_span, kafka_headers, produce_span


class PartialWithLinks(Partial, frozen=True, kw_only=True):
    """The proposed ``Partial.trace_links`` field, added the way partial.py would add it."""

    trace_links: bytes = b""


def make_tracing(
    exporter: InMemorySpanExporter, env: dict[str, str] | None = None, *, head: bool = True
) -> tuple[t.Tracing, TracerProvider]:
    """Helpers on a provider exporting to ``exporter``; ``head=False`` leaves every decision to the SDK."""
    provider = t.setup_tracing("test", exporter=exporter, env=env or {}, install=False, batch=False)
    assert provider is not None
    if head:
        return t.Tracing.from_provider(provider), provider
    return t.Tracing(provider.get_tracer(n.TRACER_NAME)), provider


def collector_request(tr: t.Tracing, session: str, events: int) -> list[tuple[str, bytes]]:
    """What the collector does per request: ingest span, produce span, headers on the message."""
    with ingest_span(tr, events=events) as span:
        with produce_span(tr, c.TOPIC_BEACONS, key=session, partition=0, parent=span) as send:
            headers = kafka_headers(send)
        span.set_attribute(n.ATTR_OUTCOME, c.OUTCOME_ACCEPTED)
    return headers


def stage1(tr: t.Tracing, messages: list[list[tuple[str, bytes]]]) -> bytes:
    """What stage 1 does: a process span per message, its context kept for the partial."""
    links = t.LinkSet()
    for offset, headers in enumerate(messages):
        with tr.process(headers, c.TOPIC_BEACONS, partition=0, offset=offset, group="streamslo") as span:
            links.add_span(span)
    return links.encode()


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def test_one_beacons_trace_spans_ingest_produce_stage1_and_links_from_stage2() -> None:
    exporter = InMemorySpanExporter()
    tr, _ = make_tracing(exporter)
    messages = [collector_request(tr, f"s{i}", events=3 + i) for i in range(2)]
    trace_links = stage1(tr, messages)
    wire = msgspec.msgpack.encode(
        PartialWithLinks(region="eu", sli="ttff", kind="rum", pane_start=0.0, pane_s=10.0,
                         source="beacons/0", lo=-1, hi=1, trace_links=trace_links)
    )
    partial = msgspec.msgpack.decode(wire, type=PartialWithLinks)
    # A bundle of two partials from the same flush carries the same links twice.
    with tr.merge([partial.trace_links, partial.trace_links], region=partial.region,
                  sli=partial.sli, source=partial.source, lo=partial.lo, hi=partial.hi):
        pass

    spans = exporter.get_finished_spans()
    ingests = by_name(spans, n.SPAN_INGEST)
    produces = by_name(spans, n.produce_span_name(c.TOPIC_BEACONS))
    processes = by_name(spans, n.process_span_name(c.TOPIC_BEACONS))
    (merge,) = by_name(spans, n.SPAN_MERGE)
    assert len(ingests) == len(produces) == len(processes) == 2
    for i, (ingest, produce, process) in enumerate(zip(ingests, produces, processes, strict=True)):
        assert ingest.parent is None and ingest.kind is SpanKind.SERVER
        assert ingest.attributes[n.ATTR_EVENTS] == 3 + i
        assert ingest.attributes[n.ATTR_OUTCOME] == c.OUTCOME_ACCEPTED
        assert produce.parent.span_id == ingest.context.span_id
        assert produce.kind is SpanKind.PRODUCER
        assert produce.attributes[n.MESSAGING_DESTINATION] == c.TOPIC_BEACONS
        assert produce.attributes[n.MESSAGING_KAFKA_KEY] == f"s{i}"
        # Stage 1 continues the same trace, as a child of the produce span across "Kafka".
        assert process.context.trace_id == ingest.context.trace_id
        assert process.parent.span_id == produce.context.span_id and process.parent.is_remote
        assert process.kind is SpanKind.CONSUMER
        assert process.attributes[n.MESSAGING_KAFKA_OFFSET] == i
    assert ingests[0].context.trace_id != ingests[1].context.trace_id
    assert sorted((lk.context.trace_id, lk.context.span_id) for lk in merge.links) == sorted(
        (p.context.trace_id, p.context.span_id) for p in processes
    )
    assert merge.attributes[n.ATTR_PARTIAL_LINKS] == 2
    assert merge.attributes[n.ATTR_PARTIAL_SOURCE] == "beacons/0"
    # The proposed field stays readable by today's partial decoder (unknown fields are ignored).
    assert partial_mod.decode(wire).hi == 1


@pytest.mark.parametrize(
    ("collector_sampler", "head", "spans_per_stage", "headers"),
    [
        ("always_on", True, 3, True),
        ("always_off", True, 0, False),
        ("always_on", False, 3, True),
        ("always_off", False, 0, False),
    ],
    ids=[
        "a sampled ingest is traced through stage 1 and stage 2 although the worker samples 0 %",
        "an unsampled ingest builds no span, propagates nothing, and stage 1 adds none",
        "without head sampling a sampled ingest is traced through both stages too",
        "without head sampling an unsampled ingest propagates nothing either",
    ],
)
def test_the_ingest_sampling_decision_carries_through_both_stages(
    collector_sampler: str, head: bool, spans_per_stage: int, headers: bool
) -> None:
    collector_spans, worker_spans = InMemorySpanExporter(), InMemorySpanExporter()
    collector, _ = make_tracing(collector_spans, {"OTEL_TRACES_SAMPLER": collector_sampler}, head=head)
    worker, _ = make_tracing(
        worker_spans,
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
        head=head,
    )
    messages = [collector_request(collector, f"s{i}", 5) for i in range(3)]
    assert all(bool(m) is headers for m in messages)
    for m in messages:
        ctx = t.span_context_from_headers(m)
        assert ctx is None or ctx.trace_flags.sampled is bool(spans_per_stage)
    trace_links = stage1(worker, messages)
    with worker.merge(trace_links, region="eu", sli="ttff"):
        pass
    spans = worker_spans.get_finished_spans()
    assert len(by_name(spans, n.process_span_name(c.TOPIC_BEACONS))) == spans_per_stage
    assert len(t.decode_span_contexts(trace_links)) == spans_per_stage
    assert len(by_name(spans, n.SPAN_MERGE)) == (1 if spans_per_stage else 0)


SAMPLED = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
UNSAMPLED = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")]
ZERO_TRACE = [("traceparent", b"00-00000000000000000000000000000000-b7ad6b7169203331-01")]


@pytest.mark.parametrize(
    ("headers", "root", "parent"),
    [
        (SAMPLED, False, 0xB7AD6B7169203331),
        (UNSAMPLED, True, "no span"),
        ([], False, "no span"),
        (ZERO_TRACE, False, "no span"),
        ([], True, None),
        (None, True, None),
        (ZERO_TRACE, True, None),
    ],
    ids=[
        "a sampled traceparent makes the stage-1 span its child",
        "an unsampled traceparent means no stage-1 span, even with root spans allowed",
        "a message without trace headers gets no span by default",
        "an invalid traceparent counts as no header",
        "with root spans allowed a message without headers starts a root span",
        "with root spans allowed a record whose headers are None starts a root span",
        "with root spans allowed an invalid traceparent starts a root span",
    ],
)
def test_stage1_span_parent_comes_from_the_message_headers(
    headers: t.Headers | None, root: bool, parent: int | str | None
) -> None:
    exporter = InMemorySpanExporter()
    tr, _ = make_tracing(exporter, {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1"})
    assert tr.head is not None
    # An unrelated current span must not become the parent.
    with ingest_span(tr, events=1), tr.process(headers, c.TOPIC_BEACONS, partition=2, root=root):
        pass
    spans = by_name(exporter.get_finished_spans(), n.process_span_name(c.TOPIC_BEACONS))
    if parent == "no span":
        assert spans == []
        return
    (span,) = spans
    assert span.attributes[n.MESSAGING_PARTITION] == "2"
    assert (span.parent.span_id if span.parent else None) == parent


@pytest.mark.parametrize(
    "head",
    [True, False],
    ids=["with the head sampler drawing first", "with the SDK sampler alone"],
)
def test_one_percent_sampling_keeps_about_one_percent_of_ingest_traces(head: bool) -> None:
    exporter = InMemorySpanExporter()
    tr, _ = make_tracing(
        exporter,
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"},
        head=head,
    )
    assert (tr.head is not None) is head
    for _ in range(20_000):
        with ingest_span(tr, events=1):
            pass
    spans = exporter.get_finished_spans()
    # 200 expected; the bounds are 7 standard deviations wide. Were the head
    # draw and the SDK's sampler not the same decision, about 2 would remain.
    assert 100 <= len(spans) <= 300
    bound = TraceIdRatioBased.get_bound_for_rate(0.01)
    assert all(s.context.trace_id & ((1 << 64) - 1) < bound for s in spans)


def test_a_head_sampled_draw_is_consumed_by_the_span_it_was_drawn_for() -> None:
    exporter = InMemorySpanExporter()
    tr, provider = make_tracing(
        exporter, {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1"}
    )
    assert tr.head is not None
    span_cm = ingest_span(tr, events=1)  # not entered yet: the span must already own the drawn id
    assert getattr(provider.id_generator._local, "trace_id", 0) == 0
    with span_cm as span:
        assert span.is_recording()


def test_with_tracing_off_helpers_are_no_ops() -> None:
    off = t.OFF
    assert off.request() is None
    with off.process([("traceparent", b"x")], c.TOPIC_BEACONS) as s1, off.merge(b"", region="eu", sli="ttff") as s2:
        s1.set_attribute(n.ATTR_DUPLICATE, True)
        assert not s1.is_recording() and not s2.is_recording()
        assert t.inject_headers() == []
    with off.process_batch([[("traceparent", b"x")]], c.TOPIC_BEACONS) as s3:
        assert not s3.is_recording()


# --- setup_tracing and the OTEL_* variables ----------------------------------------


@pytest.mark.parametrize(
    ("env", "enabled", "on"),
    [
        ({}, None, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, None, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces"}, None, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "TRUE"}, None, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, False, False),
        ({}, True, True),
    ],
    ids=[
        "tracing is off by default when no endpoint is configured",
        "an OTLP endpoint turns tracing on",
        "a traces-only OTLP endpoint turns tracing on",
        "OTEL_SDK_DISABLED turns tracing off despite an endpoint",
        "enabled False overrides a configured endpoint",
        "enabled True turns tracing on with the default local endpoint",
    ],
)
def test_setup_tracing_is_off_unless_an_endpoint_is_configured(
    env: dict[str, str], enabled: bool | None, on: bool
) -> None:
    provider = t.setup_tracing("svc", enabled=enabled, env=env, install=False)
    assert (provider is not None) is on
    if provider is not None:
        provider.shutdown()


@pytest.mark.parametrize(
    ("env", "endpoint", "protocol"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318/"}, "http://h:4318/v1/traces", "http/protobuf"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:9/x"},
            "http://t:9/x",
            "http/protobuf",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "http://h:4317", "grpc"),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
            None,
            "http/protobuf",
        ),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, None, "http/protobuf"),
    ],
    ids=[
        "the generic endpoint gets the /v1/traces path over HTTP",
        "the traces endpoint wins and is used as is",
        "over gRPC the generic endpoint is used as is",
        "the traces protocol wins over the generic protocol",
        "an unsupported protocol falls back to http/protobuf",
    ],
)
def test_endpoint_and_protocol_follow_the_otlp_exporter_spec(
    env: dict[str, str], endpoint: str | None, protocol: str
) -> None:
    config = t.config_from_env(env)
    assert (config.endpoint, config.protocol) == (endpoint, protocol)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, t.LinkAwareSampler(ParentBased(ALWAYS_ON))),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, ALWAYS_OFF),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
         t.LinkAwareSampler(TraceIdRatioBased(0.25))),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"},
         t.LinkAwareSampler(ParentBased(TraceIdRatioBased(0.01)))),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "lots"},
         t.LinkAwareSampler(ParentBased(TraceIdRatioBased(1.0)))),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
         t.LinkAwareSampler(TraceIdRatioBased(1.0))),
        ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, t.LinkAwareSampler(ParentBased(ALWAYS_ON))),
    ],
    ids=[
        "the default sampler is parentbased_always_on",
        "always_off is honoured and not made link-aware",
        "traceidratio takes its ratio from the sampler argument",
        "parentbased_traceidratio at 1 percent",
        "a sampler argument that is not a number means ratio 1",
        "a ratio above 1 means ratio 1",
        "an unsupported sampler falls back to the default",
    ],
)
def test_sampler_follows_otel_traces_sampler(env: dict[str, str], expected: object) -> None:
    sampler = t.sampler_from_config(t.config_from_env(env))
    assert sampler.get_description() == expected.get_description()  # type: ignore[attr-defined]


def test_otel_service_name_overrides_the_components_default() -> None:
    provider = t.setup_tracing(
        "streamslo-collector", exporter=InMemorySpanExporter(), env={"OTEL_SERVICE_NAME": "edge-7"}, install=False
    )
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "edge-7"
    provider.shutdown()


@pytest.fixture
def installed() -> Iterator[None]:
    t.shutdown_tracing()
    yield
    t.shutdown_tracing()


def test_installed_setup_is_idempotent_and_shutdown_flushes_the_batch(installed: None) -> None:
    assert t.tracing() is t.OFF
    exporter = InMemorySpanExporter()
    first = t.setup_tracing("a", exporter=exporter, env={}, set_global=False)
    assert first is not None and t.tracing().enabled
    assert t.setup_tracing("b", env={}, set_global=False) is first
    with ingest_span(t.tracing(), events=1):
        pass
    assert exporter.get_finished_spans() == ()  # still queued in the BatchSpanProcessor
    t.shutdown_tracing()
    assert len(exporter.get_finished_spans()) == 1
    assert t.tracing() is t.OFF
    t.shutdown_tracing()  # a second shutdown is harmless


# --- propagation and the compact span-context encoding ------------------------------

TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("value", "valid", "sampled"),
    [
        (TP, True, True),
        (TP.encode(), True, True),
        (TP[:-2] + "00", True, False),
        ("01" + TP[2:] + "-future", True, True),
        (TP + "-extra", False, False),
        ("ff" + TP[2:], False, False),
        ("00-" + "0" * 32 + TP[35:], False, False),
        ("00-0af7651916cd43dd8448eb211c80319c-" + "0" * 16 + "-01", False, False),
        (TP.upper(), False, False),
        (TP[:40], False, False),
        ("", False, False),
    ],
    ids=[
        "a sampled traceparent string",
        "a sampled traceparent in bytes, as Kafka headers carry it",
        "an unsampled traceparent",
        "a future version may append fields",
        "version 00 may not append fields",
        "version ff is invalid",
        "an all-zero trace id is invalid",
        "an all-zero span id is invalid",
        "upper-case hex is invalid",
        "a truncated value is invalid",
        "an empty value is invalid",
    ],
)
def test_parse_traceparent_follows_w3c(value: str | bytes, valid: bool, sampled: bool) -> None:
    ctx = t.parse_traceparent(value)
    assert (ctx is not None) is valid
    if ctx is not None:
        assert ctx.trace_flags.sampled is sampled and ctx.is_remote


@pytest.mark.parametrize(
    "headers",
    [
        [("key", b"v"), ("traceparent", TP.encode()), ("tracestate", b"vendor=x")],
        {"traceparent": TP, "tracestate": "vendor=x"},
    ],
    ids=["aiokafka header list with bytes values", "a Faust-style mapping with str values"],
)
def test_headers_round_trip_through_inject_and_extract(headers: t.Headers) -> None:
    ctx = t.span_context_from_headers(headers)
    assert ctx is not None and ctx.trace_state.get("vendor") == "x"
    assert dict(t.inject_headers(ctx)) == {"traceparent": TP.encode(), "tracestate": b"vendor=x"}
    link = t.span_link_from_headers(headers)
    assert link is not None and link.context.span_id == 0xB7AD6B7169203331


def test_missing_or_bad_headers_give_an_empty_context_and_no_link() -> None:
    assert t.extract_context(None) == t.extract_context([("traceparent", b"garbage")])
    assert t.span_link_from_headers([("other", b"1")]) is None


@pytest.mark.parametrize(
    "data",
    [b"", b"\x01" + b"\x00" * 24, b"\x02" + b"\x01" * 25, b"\x01" + b"\x01" * 25 + b"\x00", b"\x01" + b"\x00" * 25],
    ids=[
        "empty bytes",
        "a truncated record",
        "an unknown version",
        "trailing garbage",
        "an all-zero record (invalid ids)",
    ],
)
def test_decoding_malformed_span_contexts_yields_nothing(data: bytes) -> None:
    assert t.decode_span_contexts(data) == []


def test_linkset_keeps_sampled_unique_contexts_up_to_its_limit() -> None:
    sampled = [SpanContext((1 << 100) + i, i + 1, False, TraceFlags(1)) for i in range(5)]
    links = t.LinkSet(limit=3)
    assert not links.add(SpanContext(7, 7, False, TraceFlags(0)))
    for ctx in [*sampled, sampled[0]]:
        links.add(ctx)
    decoded = t.decode_span_contexts(links.encode())
    assert [(d.trace_id, d.span_id) for d in decoded] == [(s.trace_id, s.span_id) for s in sampled[:3]]
    assert links.dropped == 2 and len(links.encode()) == 1 + 3 * 25
    again = t.LinkSet()
    again.update(links.encode())
    assert len(again) == 3


def test_all_is_honest() -> None:
    assert sorted(t.__all__) == sorted(set(t.__all__))
    assert all(hasattr(t, name) for name in t.__all__)


def test_an_exception_escaping_a_span_marks_it_as_an_error_and_propagates() -> None:
    exporter = InMemorySpanExporter()
    tr, _ = make_tracing(exporter)
    with pytest.raises(RuntimeError, match="kafka down"), ingest_span(tr, events=1):
        raise RuntimeError("kafka down")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
    assert t.inject_headers() == []  # the span's context was detached


def test_a_stage1_batch_span_links_to_each_sampled_message_and_feeds_stage2() -> None:
    collector_spans, worker_spans = InMemorySpanExporter(), InMemorySpanExporter()
    collector, _ = make_tracing(collector_spans)
    worker, _ = make_tracing(
        worker_spans, {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}
    )
    batch = [collector_request(collector, f"s{i}", 2) for i in range(3)]
    batch += [[], UNSAMPLED, ZERO_TRACE, None]  # messages no sampled ingest produced
    links = t.LinkSet()
    with worker.process_batch(batch, c.TOPIC_BEACONS, partition=3) as span:
        links.add_span(span)
    with worker.merge(links.encode(), region="eu"):
        pass
    produces = by_name(collector_spans.get_finished_spans(), n.produce_span_name(c.TOPIC_BEACONS))
    (stage1,) = by_name(worker_spans.get_finished_spans(), n.process_span_name(c.TOPIC_BEACONS))
    (merge,) = by_name(worker_spans.get_finished_spans(), n.SPAN_MERGE)
    assert stage1.parent is None and stage1.kind is SpanKind.CONSUMER
    assert [lk.context.span_id for lk in stage1.links] == [p.context.span_id for p in produces]
    assert stage1.attributes[n.MESSAGING_BATCH_COUNT] == 7
    assert stage1.attributes[n.ATTR_BATCH_SAMPLED] == 3
    assert [lk.context.span_id for lk in merge.links] == [stage1.context.span_id]


def test_a_group_commit_record_links_to_each_of_its_sampled_beacons() -> None:
    collector_spans, worker_spans = InMemorySpanExporter(), InMemorySpanExporter()
    collector, _ = make_tracing(collector_spans)
    worker, _ = make_tracing(worker_spans)
    group_headers = [h for i in range(3) for h in collector_request(collector, f"s{i}", 2)]
    with worker.process_batch([group_headers, []], c.TOPIC_BEACONS, partition=0):
        pass
    produces = by_name(collector_spans.get_finished_spans(), n.produce_span_name(c.TOPIC_BEACONS))
    (stage1,) = by_name(worker_spans.get_finished_spans(), n.process_span_name(c.TOPIC_BEACONS))
    assert [lk.context.span_id for lk in stage1.links] == [p.context.span_id for p in produces]
    assert stage1.attributes[n.MESSAGING_BATCH_COUNT] == 2
    assert stage1.attributes[n.ATTR_BATCH_SAMPLED] == 3


def test_a_batch_without_sampled_messages_has_no_span() -> None:
    exporter = InMemorySpanExporter()
    tr, _ = make_tracing(exporter)
    with tr.process_batch([[], UNSAMPLED, None], c.TOPIC_BEACONS) as span:
        assert not span.is_recording()
    assert exporter.get_finished_spans() == ()


# --- the collector's recorded spans (slo.telemetry.request) -------------------------

PARITY_CASES = [
    # (events, send, send_fails, outcome, status)
    (3, True, False, c.OUTCOME_ACCEPTED, 202),
    (0, False, False, c.OUTCOME_REFUSED, 422),
    (3, True, True, c.OUTCOME_FAILED, 503),
]


def _span_shape(spans: tuple[ReadableSpan, ...]) -> list[tuple[object, ...]]:
    """What a reader of the trace sees, without ids and clocks."""
    ingest = by_name(spans, n.SPAN_INGEST)[0]
    assert ingest.context is not None
    shape = []
    for s in spans:
        assert s.context is not None and s.context.trace_flags.sampled
        assert s.context.trace_id == ingest.context.trace_id
        assert s.start_time is not None and s.end_time is not None and s.start_time <= s.end_time
        parent = "ingest" if s.parent is not None and s.parent.span_id == ingest.context.span_id else s.parent
        shape.append((s.name, s.kind, parent, dict(s.attributes or {}), s.status.status_code,
                      [e.name for e in s.events], dict(s.resource.attributes),
                      s.instrumentation_scope.name if s.instrumentation_scope else None))
    return sorted(shape, key=lambda x: str(x[0]))


@pytest.mark.parametrize(("events", "send", "fails", "outcome", "status"), PARITY_CASES,
                         ids=["an accepted request sent to Kafka gives the same two spans",
                              "a refused request gives the same single span",
                              "a failed send gives the same error on both spans"])
def test_recorded_request_spans_equal_the_sdk_spans_of_the_same_request(
    events: int, send: bool, fails: bool, outcome: str, status: int,
) -> None:
    from opentelemetry.trace import Status

    shapes = []
    for recorded in (False, True):
        exporter = InMemorySpanExporter()
        tr, provider = make_tracing(exporter)
        error = RuntimeError("broker down") if fails else None
        if recorded:
            spans = tr.request()
            assert spans is not None
            if send:
                spans.set_attribute(n.ATTR_EVENTS, events)
                assert [k for k, _ in spans.start_send(c.TOPIC_BEACONS, "s1")] == ["traceparent"]
                spans.end_send(error)
            spans.set_attribute(n.ATTR_OUTCOME, outcome)
            if status != 202:
                spans.set_attribute(n.HTTP_STATUS, status)
            if status >= 500:
                spans.set_error("unavailable")
            spans.end()
        else:
            with ingest_span(tr) as span:
                if send:
                    span.set_attribute(n.ATTR_EVENTS, events)
                    expect = pytest.raises(RuntimeError) if fails else contextlib.nullcontext()
                    with expect, produce_span(tr, c.TOPIC_BEACONS, key="s1", parent=span) as producer:
                        assert [k for k, _ in kafka_headers(producer)] == ["traceparent"]
                        if error is not None:
                            raise error
                span.set_attribute(n.ATTR_OUTCOME, outcome)
                if status != 202:
                    span.set_attribute(n.HTTP_STATUS, status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR, "unavailable"))
        provider.shutdown()
        shapes.append(_span_shape(exporter.get_finished_spans()))
    assert shapes[0] == shapes[1]
    assert len(shapes[1]) == (2 if send else 1)


@pytest.mark.parametrize("head", [True, False], ids=["with the head draw", "with the provider's sampler"])
def test_recorded_request_spans_follow_the_sampling_ratio(head: bool) -> None:
    exporter = InMemorySpanExporter()
    env = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.05"}
    provider = t.setup_tracing("test", exporter=exporter, env=env, install=False, batch=False)
    assert provider is not None
    tr = t.Tracing.from_provider(provider, head=head)
    assert (tr.head is not None) == head
    sampled = 0
    for _ in range(4000):
        spans = tr.request()
        if spans is not None:
            sampled += 1
            spans.end()
    provider.shutdown()
    assert 120 <= sampled <= 290  # 200 expected; binomial sd 14
    assert len(exporter.get_finished_spans()) == sampled
