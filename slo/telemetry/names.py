"""Span names and attribute keys of streamslo's self-telemetry, in one place.

Proposed for ``slo/conventions.py`` (same role as the metric names there); they
live here until the lead moves them. Messaging attributes follow the
OpenTelemetry messaging semantic conventions (Kafka), spelled out as strings
because the semconv package still ships them as "incubating".

Use the constants, never the literal strings, so a trace query in the docs and
the code that emits the attribute cannot drift apart::

    span.set_attribute(ATTR_OUTCOME, OUTCOME_ACCEPTED)
"""

from __future__ import annotations

from typing import Final

# --- Span names ---------------------------------------------------------------
# One span per ingest request (HTTP server side of POST /v1/beacons).
SPAN_INGEST: Final = "streamslo.ingest"
# Kafka spans are named "{operation} {destination}" per the messaging semconv.
SPAN_PRODUCE_PREFIX: Final = "send"
SPAN_PROCESS_PREFIX: Final = "process"
# Stage-2 merge of one partial into the rolling windows of its region.
SPAN_MERGE: Final = "streamslo.stage2.merge"
# Instrumentation scope (tracer name) used by every streamslo component.
TRACER_NAME: Final = "streamslo"


def produce_span_name(topic: str) -> str:
    """Span name of a Kafka produce to ``topic`` (``"send beacons"``)."""
    return f"{SPAN_PRODUCE_PREFIX} {topic}"


def process_span_name(topic: str) -> str:
    """Span name of processing one message of ``topic`` (``"process beacons"``)."""
    return f"{SPAN_PROCESS_PREFIX} {topic}"


# --- streamslo attributes -----------------------------------------------------
ATTR_BEACONS: Final = "streamslo.beacon.count"
ATTR_EVENTS: Final = "streamslo.beacon.events"
ATTR_REGION: Final = "streamslo.region"
ATTR_OUTCOME: Final = "streamslo.outcome"  # accepted | refused | failed (conventions.OUTCOME_*)
ATTR_REASON: Final = "streamslo.refused.reason"
ATTR_DUPLICATE: Final = "streamslo.beacon.duplicate"  # stage 1: Stage1.add returned False
ATTR_LATE_EVENTS: Final = "streamslo.beacon.late_events"  # stage 1, optional
ATTR_STAGE: Final = "streamslo.stage"  # 1 or 2
ATTR_SLI: Final = "streamslo.sli"
ATTR_PARTIAL_SOURCE: Final = "streamslo.partial.source"
ATTR_PARTIAL_LO: Final = "streamslo.partial.lo"
ATTR_PARTIAL_HI: Final = "streamslo.partial.hi"
ATTR_PARTIAL_SKIPPED: Final = "streamslo.partial.skipped"  # idempotent replay, not applied
ATTR_PARTIAL_LINKS: Final = "streamslo.partial.links"
ATTR_BATCH_SAMPLED: Final = "streamslo.batch.sampled"  # sampled messages a batch span links to

# --- OpenTelemetry semantic conventions (messaging, HTTP) ---------------------
MESSAGING_SYSTEM: Final = "messaging.system"
MESSAGING_SYSTEM_KAFKA: Final = "kafka"
MESSAGING_DESTINATION: Final = "messaging.destination.name"
MESSAGING_PARTITION: Final = "messaging.destination.partition.id"
MESSAGING_OPERATION_NAME: Final = "messaging.operation.name"
MESSAGING_KAFKA_KEY: Final = "messaging.kafka.message.key"
MESSAGING_KAFKA_OFFSET: Final = "messaging.kafka.offset"
MESSAGING_CONSUMER_GROUP: Final = "messaging.consumer.group.name"
MESSAGING_BATCH_COUNT: Final = "messaging.batch.message_count"
OPERATION_SEND: Final = "send"
OPERATION_PROCESS: Final = "process"
HTTP_STATUS: Final = "http.response.status_code"

# --- W3C trace-context header names (Kafka message headers) -------------------
HEADER_TRACEPARENT: Final = "traceparent"
HEADER_TRACESTATE: Final = "tracestate"
