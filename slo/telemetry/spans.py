"""The pipeline spans built through the SDK: stage-1 process (per message or batch), stage-2 merge.

Components hold a :class:`Tracing` (``slo.telemetry.tracing()`` once
:func:`~slo.telemetry.setup_tracing` ran, or ``Tracing.from_provider(p)``
in tests) and wrap their work in its context managers. With tracing off every
method returns one shared ``nullcontext(INVALID_SPAN)`` (:data:`NO_SPAN`): the
hot path pays a method call, and ``span.set_attribute`` on the invalid span is
a no-op, so callers never branch::

    tr = tracing()
    with tr.process_batch([r.headers for r in records], TOPIC_BEACONS, partition=0) as span:
        links.add_span(span)      # a no-op on the invalid span
    with tr.merge(partial.trace_links, region=partial.region) as span:
        span.set_attribute(ATTR_PARTIAL_SKIPPED, not stage2.apply(partial))

The collector's two spans (ingest, produce) are recorded without the SDK's
``Span``: :meth:`Tracing.request` (:mod:`.request`).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from contextvars import Token
from types import TracebackType

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from slo.telemetry import names as n
from slo.telemetry.propagation import (
    Headers,
    decode_span_contexts,
    extract_context,
    header_value,
    per_producer,
    span_context_from_headers,
)
from slo.telemetry.request import RequestRecorder, RequestSpans
from slo.telemetry.sampling import HeadSampler, head_sampler_for

SpanCM = AbstractContextManager[Span]

NO_SPAN: SpanCM = nullcontext(INVALID_SPAN)
"""What every helper returns when there is no span to make (reusable: nullcontext re-enters)."""


def _flags_sampled(traceparent: bytes | str) -> bool | None:
    """The sampled bit of a well-formed traceparent, ``None`` if it cannot be read.

    Cheap pre-check so stage 1 skips unsampled messages without building any
    OpenTelemetry object (99 % of messages at 1 % sampling).
    """
    flags = traceparent[53:55]
    try:
        return bool(int(flags, 16) & 1) if len(flags) == 2 else None
    except ValueError:
        return None


class _Scope:
    """Makes ``span`` current, ends it on exit, records an exception that escapes.

    What ``trace.use_span(span, end_on_exit=True)`` does, as a class: the
    generator-based original costs about 3x a plain attach/detach.
    """

    __slots__ = ("span", "token")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.token: Token[Context] | None = None

    def __enter__(self) -> Span:
        self.token = context.attach(trace.set_span_in_context(self.span))
        return self.span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.token is not None:
            context.detach(self.token)
        if isinstance(exc, Exception) and self.span.is_recording():
            self.span.record_exception(exc)
            self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        self.span.end()


def start_span(
    tracer: Tracer,
    name: str,
    kind: SpanKind,
    attrs: dict[str, AttributeValue],
    context: Context | None = None,
    links: Sequence[Link] = (),
) -> SpanCM:
    """Start ``name`` now and return the context manager that makes it current and ends it.

    Started eagerly (not ``start_as_current_span``, which starts on
    ``__enter__``), so a trace id preset by the head sampler is consumed at once.
    """
    return _Scope(tracer.start_span(name, context, kind, attrs, links))


class Tracing:
    """Span factory for one component; ``Tracing(None)`` is the no-op used when tracing is off.

    Use one per process (``tracing()``) or per test (``Tracing.from_provider(provider)``).
    With a ``head`` sampler, root spans the ratio would drop are never built
    (see :mod:`.sampling`); without one every decision is the SDK's.
    """

    __slots__ = ("enabled", "head", "recorder", "tracer")

    def __init__(
        self, tracer: Tracer | None, head: HeadSampler | None = None,
        recorder: RequestRecorder | None = None,
    ) -> None:
        self.tracer = tracer
        self.head = head
        self.recorder = recorder
        self.enabled = tracer is not None

    def request(self) -> RequestSpans | None:
        """The collector's spans for one ingest request, or ``None`` (off, or not sampled).

        The cheap path for the hot endpoint (:mod:`.request`); needs a
        ``Tracing`` built by :meth:`from_provider`.
        """
        return self.recorder.start() if self.recorder is not None else None

    @classmethod
    def from_provider(cls, provider: TracerProvider, *, head: bool = True) -> Tracing:
        """The helpers for ``provider``, with its head sampler when it has one
        (``head=False``: every root decision is the provider's sampler's)."""
        sampler = head_sampler_for(provider) if head else None
        return cls(provider.get_tracer(n.TRACER_NAME), sampler,
                   RequestRecorder.for_provider(provider, sampler))

    def process(
        self,
        headers: Headers | None,
        topic: str,
        *,
        partition: int | None = None,
        offset: int | None = None,
        group: str | None = None,
        root: bool = False,
    ) -> SpanCM:
        """Consumer span of processing one Kafka message, child of the span that produced it.

        Only messages the ingest sampled get a span: a ``traceparent`` that
        says "not sampled" means no span (as ``parentbased_*`` samplers would
        decide, without their cost), and so does a message without trace
        headers (dropped by the ingest's head draw, or an untraced collector),
        unless ``root=True``: then it starts a root span that the configured
        sampler decides on (to trace stage 1 alone). Stage 1 handles each
        message in a few µs, so root spans there would cost more than the work.
        """
        if self.tracer is None:
            return NO_SPAN
        parent = header_value(headers, n.HEADER_TRACEPARENT)
        if parent is not None and _flags_sampled(parent) is False:
            return NO_SPAN
        remote = span_context_from_headers(headers) if parent is not None else None
        if remote is None:  # no (valid) parent: a root, whatever the current context
            if not root or (self.head is not None and not self.head.draw()):
                return NO_SPAN
            context = Context()
        else:
            context = trace.set_span_in_context(trace.NonRecordingSpan(remote), Context())
        attrs: dict[str, AttributeValue] = {
            n.MESSAGING_SYSTEM: n.MESSAGING_SYSTEM_KAFKA,
            n.MESSAGING_DESTINATION: topic,
            n.MESSAGING_OPERATION_NAME: n.OPERATION_PROCESS,
        }
        if partition is not None:
            attrs[n.MESSAGING_PARTITION] = str(partition)
        if offset is not None:
            attrs[n.MESSAGING_KAFKA_OFFSET] = offset
        if group is not None:
            attrs[n.MESSAGING_CONSUMER_GROUP] = group
        return start_span(self.tracer, n.process_span_name(topic), SpanKind.CONSUMER, attrs, context)

    def process_batch(
        self,
        headers: Iterable[Headers | None],
        topic: str,
        *,
        partition: int | None = None,
        group: str | None = None,
        count: int | None = None,
    ) -> SpanCM:
        """One consumer span for a whole ``getmany`` batch, linked to each sampled message's producer.

        A group-commit record links to each of its sampled beacons' producers.

        The cheap alternative to :meth:`process` where the per-message work is
        a few µs: a sampled span costs far more than that, so one span per
        batch (about one per sampled message at most, 128 links by the SDK's
        default limit) keeps tracing off the per-message budget. Without any
        sampled message in the batch there is no span. Add the span to the
        batch's partials with ``LinkSet.add_span`` so stage 2 links to it.
        ``count`` is the batch size when ``headers`` holds only the non-empty
        ones (the cheap way: most messages carry none).
        """
        if self.tracer is None:
            return NO_SPAN
        links, seen = [], 0
        for message in headers:
            seen += 1
            if not message:
                continue
            for h in per_producer(message):  # a group-commit record: one per sampled beacon
                parent = header_value(h, n.HEADER_TRACEPARENT)
                if parent is not None and _flags_sampled(parent):
                    ctx = span_context_from_headers(h)
                    if ctx is not None:
                        links.append(Link(ctx))
        if not links:
            return NO_SPAN
        attrs: dict[str, AttributeValue] = {
            n.MESSAGING_SYSTEM: n.MESSAGING_SYSTEM_KAFKA,
            n.MESSAGING_DESTINATION: topic,
            n.MESSAGING_OPERATION_NAME: n.OPERATION_PROCESS,
            n.MESSAGING_BATCH_COUNT: seen if count is None else count,
            n.ATTR_BATCH_SAMPLED: len(links),
        }
        if partition is not None:
            attrs[n.MESSAGING_PARTITION] = str(partition)
        if group is not None:
            attrs[n.MESSAGING_CONSUMER_GROUP] = group
        return start_span(
            self.tracer, n.process_span_name(topic), SpanKind.CONSUMER, attrs, Context(), links
        )

    def merge(
        self,
        trace_links: bytes | Sequence[bytes],
        *,
        region: str,
        sli: str | None = None,
        source: str | None = None,
        lo: int | None = None,
        hi: int | None = None,
        headers: Headers | None = None,
    ) -> SpanCM:
        """Stage-2 span merging one partial (or bundle), linked to the stage-1 spans that fed it.

        ``trace_links`` is the partial's encoded :class:`LinkSet` (or several,
        one per partial of a bundle; duplicates are linked once). ``headers`` of the ``slo-partials`` message, if
        given, make the span a child of the stage-1 flush. A span with links
        to sampled spans is always sampled (see ``LinkAwareSampler``), so each
        sampled beacon's trace reaches stage 2.
        """
        if self.tracer is None:
            return NO_SPAN
        blobs = [trace_links] if isinstance(trace_links, bytes) else trace_links
        # A bundle's partials (one per sli/kind/pane) usually repeat the same links.
        unique = {(x.trace_id, x.span_id): x for blob in blobs for x in decode_span_contexts(blob)}
        links = [Link(ctx) for ctx in unique.values()]
        context = extract_context(headers) if headers is not None else Context()
        root = not trace.get_current_span(context).get_span_context().is_valid
        # Links in partials are sampled by construction (LinkSet); without any,
        # a root merge span is an ordinary ratio decision.
        if root and not links and self.head is not None and not self.head.draw():
            return NO_SPAN
        attrs: dict[str, AttributeValue] = {
            n.ATTR_STAGE: 2,
            n.ATTR_REGION: region,
            n.ATTR_PARTIAL_LINKS: len(links),
        }
        if sli is not None:  # None for a bundle of several SLIs
            attrs[n.ATTR_SLI] = sli
        if source is not None:
            attrs[n.ATTR_PARTIAL_SOURCE] = source
        if lo is not None:
            attrs[n.ATTR_PARTIAL_LO] = lo
        if hi is not None:
            attrs[n.ATTR_PARTIAL_HI] = hi
        return start_span(self.tracer, n.SPAN_MERGE, SpanKind.CONSUMER, attrs, context, links)


OFF = Tracing(None)
"""The shared no-op :class:`Tracing` (tracing not set up or disabled)."""
