"""The collector's per-request spans, recorded as plain data: the SDK's cost without the SDK's Span.

A sampled ``POST /v1/beacons`` gets an ingest span and, with Kafka, a
``send <topic>`` child. Built through the SDK (as ``tests/telemetry_sdk_spans.py``
does, the reference they are tested against) those two spans cost about 170 µs of the event loop's
CPU (sampler chain, attribute validation behind a lock, context attach and
detach, two ``Span`` objects), several times the whole request, and far
more on a busy server where that rarely run code is cold: at 1 % sampling
it was most of the tracing overhead measured end to end (docs/benchmarks.md).

:class:`RequestSpans` keeps ids, clock readings and attributes in slots and,
at :meth:`RequestSpans.end`, hands finished ``ReadableSpan`` objects
straight to the provider's span processors, which is what ``Span.end()``
does. The spans are the same (name, kind, ids, parent, attributes, status,
resource, scope); only the root sampling decision is taken up front, by the
head sampler or the provider's own sampler (:class:`RequestRecorder`), so
no span is ever started that the sampler would drop.

>>> from opentelemetry.sdk.trace import TracerProvider
>>> from opentelemetry.sdk.trace.export import SimpleSpanProcessor
>>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
>>> provider, memory = TracerProvider(), InMemorySpanExporter()
>>> provider.add_span_processor(SimpleSpanProcessor(memory))
>>> spans = RequestRecorder.for_provider(provider, None).start()
>>> headers = spans.start_send("beacons", "s1")
>>> spans.end_send(); spans.end()
>>> [s.name for s in memory.get_finished_spans()]
['send beacons', 'streamslo.ingest']
"""

from __future__ import annotations

import random
import time
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AttributeValue

from slo.telemetry import names as n
from slo.telemetry.propagation import inject_headers
from slo.telemetry.sampling import HeadSampler

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSET = Status(StatusCode.UNSET)


class RequestRecorder:
    """Decides whether a request is traced and, if so, starts its :class:`RequestSpans`.

    Build with :meth:`for_provider`; :meth:`start` returns ``None`` for a
    request the sampler drops (99 % of them at 1 %), at the cost of one
    random draw.
    """

    __slots__ = ("head", "processor", "resource", "sampler", "scope")

    def __init__(self, processor: SpanProcessor, resource: Any, scope: InstrumentationScope,
                 head: HeadSampler | None, sampler: Sampler) -> None:
        self.processor = processor
        self.resource = resource
        self.scope = scope
        self.head = head
        self.sampler = sampler

    @classmethod
    def for_provider(cls, provider: TracerProvider, head: HeadSampler | None) -> RequestRecorder:
        # The provider's multi-processor is what Span.end() reports to; the SDK
        # has no public accessor for it (nor for the tracer's scope).
        processor: SpanProcessor = provider._active_span_processor
        scope = InstrumentationScope(n.TRACER_NAME)
        return cls(processor, provider.resource, scope, head, provider.sampler)

    def start(self) -> RequestSpans | None:
        """A root ingest span for this request, or ``None`` if it is not sampled."""
        if self.head is not None:
            trace_id = self.head.draw_id()
            if not trace_id:
                return None
        else:  # not a ratio sampler: ask it, as the SDK would for a root span
            trace_id = random.getrandbits(128) or 1
            result = self.sampler.should_sample(Context(), trace_id, n.SPAN_INGEST, SpanKind.SERVER)
            if result.decision is not Decision.RECORD_AND_SAMPLE:
                return None
        return RequestSpans(self, trace_id)


class RequestSpans:
    """The ingest span of one sampled request and its optional ``send <topic>`` child.

    Set attributes with :meth:`set_attribute`, mark a server error with
    :meth:`set_error`, wrap the export in :meth:`start_send` /
    :meth:`end_send`, and call :meth:`end` exactly once when the answer is sent.
    """

    __slots__ = ("_recorder", "attributes", "context", "send", "start_ns", "status")

    def __init__(self, recorder: RequestRecorder, trace_id: int) -> None:
        self._recorder = recorder
        self.context = SpanContext(trace_id, random.getrandbits(64) or 1, False, _SAMPLED)
        self.start_ns = time.time_ns()
        self.attributes: dict[str, AttributeValue] = {n.ATTR_BEACONS: 1, n.ATTR_EVENTS: 0}
        self.status = _UNSET
        self.send: _Send | None = None

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self.attributes[key] = value

    def set_error(self, description: str) -> None:
        self.status = Status(StatusCode.ERROR, description)

    def start_send(self, topic: str, key: str) -> list[tuple[str, bytes]]:
        """Start the producer span; returns its W3C headers for the Kafka message."""
        context = SpanContext(self.context.trace_id, random.getrandbits(64) or 1, False, _SAMPLED)
        self.send = _Send(topic, key, context)
        return inject_headers(context)

    def end_send(self, error: BaseException | None = None) -> None:
        """End the producer span; an ``error`` (the export failed) is recorded on it."""
        if self.send is not None:
            self.send.end_ns = time.time_ns()
            self.send.error = error

    def end(self) -> None:
        """Hand the finished spans to the span processors (the child first, as the SDK would)."""
        rec, end_ns = self._recorder, time.time_ns()
        send = self.send
        if send is not None:
            status, events = _UNSET, ()  # type: tuple[Status, tuple[Event, ...]]
            if send.error is not None:
                message = f"{type(send.error).__name__}: {send.error}"
                status = Status(StatusCode.ERROR, message)
                events = (Event("exception", {"exception.type": type(send.error).__name__,
                                              "exception.message": str(send.error)}),)
            rec.processor.on_end(ReadableSpan(
                n.produce_span_name(send.topic), send.context, self.context, rec.resource,
                {n.MESSAGING_SYSTEM: n.MESSAGING_SYSTEM_KAFKA, n.MESSAGING_DESTINATION: send.topic,
                 n.MESSAGING_OPERATION_NAME: n.OPERATION_SEND, n.MESSAGING_KAFKA_KEY: send.key},
                events, (), SpanKind.PRODUCER, status=status, start_time=send.start_ns,
                end_time=send.end_ns or end_ns, instrumentation_scope=rec.scope,
            ))
        rec.processor.on_end(ReadableSpan(
            n.SPAN_INGEST, self.context, None, rec.resource, self.attributes, (), (),
            SpanKind.SERVER, status=self.status, start_time=self.start_ns, end_time=end_ns,
            instrumentation_scope=rec.scope,
        ))


class _Send:
    __slots__ = ("context", "end_ns", "error", "key", "start_ns", "topic")

    def __init__(self, topic: str, key: str, context: SpanContext) -> None:
        self.topic = topic
        self.key = key
        self.context = context
        self.start_ns = time.time_ns()
        self.end_ns = 0
        self.error: BaseException | None = None
