"""Tracing exported over real OTLP/HTTP (http/protobuf) to a local receiver on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from slo import conventions as c
from slo import telemetry as t
from slo.telemetry import names as n
from streamslo.testing.otlp_sink import OtlpSink
from tests.conftest import ROOT
from tests.telemetry_sdk_spans import ingest_span, produce_span

SPAN_KIND_SERVER, SPAN_KIND_PRODUCER, SPAN_KIND_CONSUMER = 2, 4, 5


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    with OtlpSink() as s:
        yield s


def test_the_pipeline_spans_arrive_over_otlp_http_with_parents_and_links(sink: OtlpSink) -> None:
    provider = t.setup_tracing(
        "streamslo-test", env={"OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint}, install=False
    )
    assert provider is not None
    tr = t.Tracing(provider.get_tracer(n.TRACER_NAME))
    with ingest_span(tr, events=4) as span:
        with produce_span(tr, c.TOPIC_BEACONS, key="s1", partition=1):
            headers = t.inject_headers()
        span.set_attribute(n.ATTR_OUTCOME, c.OUTCOME_ACCEPTED)
    links = t.LinkSet()
    with tr.process(headers, c.TOPIC_BEACONS, partition=1, offset=41):
        links.add_current()
    with tr.merge(links.encode(), region="eu", sli="ttff", source="beacons/1", lo=40, hi=41):
        pass
    provider.shutdown()  # flushes the BatchSpanProcessor through the OTLP exporter

    spans = {s.name: s for s in sink.wait_for(4)}
    assert sink.content_types[0] == "application/x-protobuf"
    ingest, produce = spans[n.SPAN_INGEST], spans[n.produce_span_name(c.TOPIC_BEACONS)]
    process, merge = spans[n.process_span_name(c.TOPIC_BEACONS)], spans[n.SPAN_MERGE]
    assert {s.service for s in spans.values()} == {"streamslo-test"}
    assert ingest.kind == SPAN_KIND_SERVER and ingest.parent_span_id == ""
    assert ingest.attributes[n.ATTR_EVENTS] == 4
    assert ingest.attributes[n.ATTR_OUTCOME] == c.OUTCOME_ACCEPTED
    assert produce.kind == SPAN_KIND_PRODUCER and produce.parent_span_id == ingest.span_id
    assert process.kind == SPAN_KIND_CONSUMER and process.parent_span_id == produce.span_id
    assert process.trace_id == produce.trace_id == ingest.trace_id
    assert process.attributes[n.MESSAGING_KAFKA_OFFSET] == 41
    assert merge.links == ((process.trace_id, process.span_id),)
    assert merge.attributes[n.ATTR_PARTIAL_HI] == 41


CHILD = textwrap.dedent(
    """
    from slo.telemetry import setup_tracing, tracing
    assert setup_tracing("streamslo-collector") is not None
    spans = tracing().request()  # the collector's ingest span, sampled at ratio 1
    assert spans is not None
    spans.end()
    # no explicit shutdown: the exit hook must export the queued span
    """
)


def test_a_process_configured_only_by_otel_variables_exports_at_exit(sink: OtlpSink) -> None:
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": "collector-eu-1",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "1.0",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",  # read by the exporter itself
    }
    env.pop("OTEL_SDK_DISABLED", None)
    subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=ROOT, check=True, timeout=60)
    (span,) = sink.wait_for(1, timeout=5)
    assert (span.service, span.name, span.scope) == ("collector-eu-1", n.SPAN_INGEST, n.TRACER_NAME)
    assert sink.encodings == ["gzip"]


def test_grpc_protocol_builds_the_grpc_exporter_on_the_configured_endpoint() -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    from slo.telemetry.setup import _otlp_exporter

    exporter = _otlp_exporter(
        t.config_from_env({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"})
    )
    assert isinstance(exporter, OTLPSpanExporter)
    exporter.shutdown()
