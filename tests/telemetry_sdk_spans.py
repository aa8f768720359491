"""The collector's two spans built through the OpenTelemetry SDK, for the telemetry tests.

The collector records its ``streamslo.ingest`` and ``send beacons`` spans as
plain data (``slo/telemetry/request.py``: the SDK's ``Span`` cost most of the
tracing overhead). These SDK-built equivalents are the reference the recorded
spans are checked against (``tests/test_telemetry.py``), and the quick way
for a test to make a sampled request's trace and its Kafka headers::

    with ingest_span(tr, events=2) as span, produce_span(tr, TOPIC_BEACONS, parent=span) as send:
        headers = kafka_headers(send)
"""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, get_current_span
from opentelemetry.util.types import AttributeValue

from slo.telemetry import Tracing, inject_headers
from slo.telemetry import names as n
from slo.telemetry.spans import NO_SPAN, SpanCM, start_span


def ingest_span(tr: Tracing, *, events: int = 0, beacons: int = 1) -> SpanCM:
    """Server span of one ``POST /v1/beacons``, the root of a trace (after the head draw)."""
    if tr.tracer is None or (tr.head is not None and not tr.head.draw()):
        return NO_SPAN
    attrs: dict[str, AttributeValue] = {n.ATTR_BEACONS: beacons, n.ATTR_EVENTS: events}
    return start_span(tr.tracer, n.SPAN_INGEST, SpanKind.SERVER, attrs, Context())


def produce_span(tr: Tracing, topic: str, *, key: str | None = None, partition: int | None = None,
                 parent: Span | None = None) -> SpanCM:
    """Producer span of one Kafka send, only inside a recording span (``parent``, or the current one)."""
    if tr.tracer is None or not (parent if parent is not None else get_current_span()).is_recording():
        return NO_SPAN
    attrs: dict[str, AttributeValue] = {
        n.MESSAGING_SYSTEM: n.MESSAGING_SYSTEM_KAFKA,
        n.MESSAGING_DESTINATION: topic,
        n.MESSAGING_OPERATION_NAME: n.OPERATION_SEND,
    }
    if key is not None:
        attrs[n.MESSAGING_KAFKA_KEY] = key
    if partition is not None:
        attrs[n.MESSAGING_PARTITION] = str(partition)
    return start_span(tr.tracer, n.produce_span_name(topic), SpanKind.PRODUCER, attrs)


def kafka_headers(span: Span) -> list[tuple[str, bytes]]:
    """The ``traceparent`` (and ``tracestate``) headers a message sent inside ``span`` carries."""
    return inject_headers(span.get_span_context())
