"""W3C trace context across Kafka: message headers, and span contexts packed into partials.

Use :func:`inject_headers` when producing a Kafka message, :func:`extract_context`
or :func:`span_link_from_headers` when consuming one, and :class:`LinkSet` /
:func:`decode_span_contexts` to carry the contexts of the stage-1 spans that fed a
partial to the stage-2 merge span (which links to them).

Headers are aiokafka-style ``[(str, bytes)]`` lists; extraction also accepts a
``Mapping`` (Faust exposes headers either way). Everything here works whether
or not tracing is set up: with no active span :func:`inject_headers` returns
``[]`` and the readers return empty results, so callers never branch.

>>> ctx = parse_traceparent(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
>>> decode_span_contexts(encode_span_contexts([ctx]))[0].span_id == ctx.span_id
True
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeAlias

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, TraceFlags, TraceState

from slo.telemetry.names import HEADER_TRACEPARENT, HEADER_TRACESTATE

HeaderValue: TypeAlias = bytes | str
Headers: TypeAlias = Mapping[str, HeaderValue] | Iterable[tuple[str, HeaderValue]]

__all__ = [
    "Headers",
    "LinkSet",
    "decode_span_contexts",
    "encode_span_contexts",
    "extract_context",
    "header_value",
    "inject_headers",
    "links_from_bytes",
    "parse_traceparent",
    "span_link_from_headers",
]

_HEX = frozenset("0123456789abcdef")


def inject_headers(span_context: SpanContext | None = None) -> list[tuple[str, bytes]]:
    """W3C ``traceparent`` (and ``tracestate``) headers for the current span, or ``[]``.

    Call inside the produce span so the consumer's span becomes its child.
    Unsampled contexts are propagated too (flags ``00``): the consumer then
    knows the trace was dropped upstream and skips its own span cheaply.

    >>> inject_headers()  # no active span
    []
    """
    ctx = span_context if span_context is not None else trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return []
    value = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
    headers = [(HEADER_TRACEPARENT, value.encode("ascii"))]
    if ctx.trace_state:
        headers.append((HEADER_TRACESTATE, ctx.trace_state.to_header().encode("ascii")))
    return headers


def header_value(headers: Headers | None, name: str) -> HeaderValue | None:
    """The first value of header ``name`` (exact, lower-case match), or ``None``."""
    if not headers:
        return None
    # Concrete types first: aiokafka hands tuples, and an ABC isinstance check
    # costs more than the whole lookup in stage 1's per-message loop.
    if not isinstance(headers, list | tuple) and isinstance(headers, Mapping):
        return headers.get(name)
    for key, value in headers:
        if key == name:
            return value
    return None


def parse_traceparent(
    value: HeaderValue | None, tracestate: HeaderValue | None = None
) -> SpanContext | None:
    """Parse a W3C ``traceparent`` value into a remote :class:`SpanContext`, or ``None``.

    Follows the W3C rules: version ``ff`` and all-zero ids are invalid;
    a future version may append fields after the flags.
    """
    if value is None:
        return None
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    text = text.strip()
    if len(text) < 55 or (len(text) > 55 and (text[:2] == "00" or text[55] != "-")):
        return None
    version, trace_hex, span_hex, flags_hex = text[:2], text[3:35], text[36:52], text[53:55]
    if text[2] != "-" or text[35] != "-" or text[52] != "-" or version == "ff":
        return None
    if not _HEX.issuperset(version + trace_hex + span_hex + flags_hex):
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if trace_id == 0 or span_id == 0:
        return None
    state = None
    if tracestate:
        raw = tracestate.decode("ascii", "replace") if isinstance(tracestate, bytes) else tracestate
        state = TraceState.from_header([raw])
    return SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=TraceFlags(int(flags_hex, 16)), trace_state=state
    )


def span_context_from_headers(headers: Headers | None) -> SpanContext | None:
    """The remote span context carried by Kafka message ``headers``, or ``None``."""
    parent = header_value(headers, HEADER_TRACEPARENT)
    if parent is None:
        return None
    return parse_traceparent(parent, header_value(headers, HEADER_TRACESTATE))


def extract_context(headers: Headers | None, context: Context | None = None) -> Context:
    """An OpenTelemetry :class:`Context` whose parent is the span that produced the message.

    Pass it as ``context=`` to ``tracer.start_as_current_span``; without valid
    headers the result is ``context`` (or an empty one), so the new span is a root.
    """
    ctx = span_context_from_headers(headers)
    base = context if context is not None else Context()
    if ctx is None:
        return base
    return trace.set_span_in_context(NonRecordingSpan(ctx), base)


def per_producer(headers: Headers) -> list[list[tuple[str, HeaderValue]]]:
    """A message's headers split into one list per producing span.

    A group-commit record (``collector/group_commit.py``) carries one
    ``traceparent`` (and maybe a ``tracestate`` after it) per sampled beacon;
    a plain message carries at most one. Each list starts at a ``traceparent``.

    >>> per_producer([("traceparent", b"a"), ("tracestate", b"x=1"), ("traceparent", b"b")])
    [[('traceparent', b'a'), ('tracestate', b'x=1')], [('traceparent', b'b')]]
    """
    if not isinstance(headers, list | tuple) and isinstance(headers, Mapping):
        return [list(headers.items())]
    chunks: list[list[tuple[str, HeaderValue]]] = []
    for key, value in headers:
        if key == HEADER_TRACEPARENT or not chunks:
            chunks.append([])
        chunks[-1].append((key, value))
    return chunks


def span_link_from_headers(headers: Headers | None) -> Link | None:
    """A span :class:`Link` to the producer of a message, for batch spans; ``None`` if absent."""
    ctx = span_context_from_headers(headers)
    return Link(ctx) if ctx is not None else None


# --- compact span-context encoding (rides in Partial.trace_links) ---------------
# Format: one version byte (1), then 25 bytes per context: trace id (16, big
# endian), span id (8), trace flags (1). Trace state is dropped: links only
# need ids. 10 links cost 251 bytes; an empty set costs 0 bytes (b"").
_VERSION = 1
_RECORD = struct.Struct(">QQQB")  # trace id as two u64 halves, span id, flags
_RECORD_SIZE = _RECORD.size  # 25


def encode_span_contexts(contexts: Iterable[SpanContext]) -> bytes:
    """Pack span contexts into bytes (``b""`` when there are none)."""
    body = b"".join(
        _RECORD.pack(c.trace_id >> 64, c.trace_id & 0xFFFFFFFFFFFFFFFF, c.span_id, c.trace_flags)
        for c in contexts
        if c.is_valid
    )
    return bytes((_VERSION,)) + body if body else b""


def decode_span_contexts(data: bytes) -> list[SpanContext]:
    """Unpack :func:`encode_span_contexts` output; malformed input yields ``[]``, never raises.

    Stage 2 must not fail a merge over a telemetry field, so a bad or future
    version is simply ignored.
    """
    if not data or data[0] != _VERSION or (len(data) - 1) % _RECORD_SIZE:
        return []
    out = []
    for hi, lo, span_id, flags in _RECORD.iter_unpack(memoryview(data)[1:]):
        ctx = SpanContext((hi << 64) | lo, span_id, is_remote=True, trace_flags=TraceFlags(flags))
        if ctx.is_valid:
            out.append(ctx)
    return out


def links_from_bytes(data: bytes | Sequence[bytes]) -> list[Link]:
    """Span links for every context in one or several encoded blobs."""
    blobs = [data] if isinstance(data, bytes | bytearray) else data
    return [Link(ctx) for blob in blobs for ctx in decode_span_contexts(bytes(blob))]


class LinkSet:
    """Collects the sampled span contexts that contributed to one partial, capped.

    Stage 1 keeps one per partial key (pane, region, sli, kind), adds the
    context of each sampled ``process`` span whose beacon fed the partial, and
    writes :meth:`encode` into the partial at flush. Unsampled contexts are
    ignored (their spans are never exported, a link to them would dangle); past
    ``limit`` contexts only :attr:`dropped` grows, keeping partials small.

    >>> s = LinkSet(limit=2)
    >>> s.add(SpanContext(1, 1, False, TraceFlags(1))), s.add(SpanContext(1, 2, False))
    (True, False)
    >>> len(s), len(s.encode())
    (1, 26)
    """

    __slots__ = ("_contexts", "dropped", "limit")

    def __init__(self, limit: int = 32) -> None:
        self.limit = limit
        self.dropped = 0
        self._contexts: dict[tuple[int, int], SpanContext] = {}

    def add(self, ctx: SpanContext) -> bool:
        """Record ``ctx`` if it is valid and sampled; return whether it was kept."""
        if not (ctx.is_valid and ctx.trace_flags.sampled):
            return False
        key = (ctx.trace_id, ctx.span_id)
        if key in self._contexts:
            return True
        if len(self._contexts) >= self.limit:
            self.dropped += 1
            return False
        self._contexts[key] = ctx
        return True

    def add_span(self, span: trace.Span) -> bool:
        """Record ``span`` if it is recording (the ``as`` target of the stage-1 ``process`` span).

        Cheapest way in the per-message loop: a non-recording span costs one method call.
        """
        return span.is_recording() and self.add(span.get_span_context())

    def add_current(self) -> bool:
        """Record the current span's context (when the ``process`` span is not at hand)."""
        return self.add(trace.get_current_span().get_span_context())

    def update(self, data: bytes) -> None:
        """Add every context of an encoded blob (when stage 1 combines partials)."""
        for ctx in decode_span_contexts(data):
            self.add(ctx)

    def encode(self) -> bytes:
        """The bytes for ``Partial.trace_links`` (``b""`` when empty)."""
        return encode_span_contexts(self._contexts.values())

    def clear(self) -> None:
        """Forget all contexts (after a flush)."""
        self._contexts.clear()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._contexts)
