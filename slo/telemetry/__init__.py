"""streamslo's self-telemetry: OpenTelemetry traces from HTTP ingest through Kafka to stage 2.

When to use: every component calls :func:`setup_tracing` once at start and
:func:`shutdown_tracing` on stop, then wraps its work in the spans of
:func:`tracing` (see ``docs/telemetry.md`` for where each one goes)::

    setup_tracing("streamslo-collector")          # off unless OTEL_EXPORTER_OTLP_*ENDPOINT is set
    tr = tracing()
    spans = tr.request()                          # the collector: None unless this request is sampled
    with tr.merge(partial.trace_links, region="eu-west-1"):   # stage 2
        ...

Modules: :mod:`.setup` (SDK, env config), :mod:`.sampling` (cheap head
sampling, link-aware roots), :mod:`.request` (the collector's ingest and
produce spans, recorded as plain data), :mod:`.spans` (stage 1's and stage 2's
spans, through the SDK), :mod:`.propagation` (Kafka headers, span contexts in
partials), :mod:`.names` (span and attribute names). From the project it
imports only :mod:`slo.conventions`.
"""

from __future__ import annotations

from slo.telemetry.propagation import (
    Headers,
    LinkSet,
    decode_span_contexts,
    encode_span_contexts,
    extract_context,
    inject_headers,
    links_from_bytes,
    parse_traceparent,
    span_context_from_headers,
    span_link_from_headers,
)
from slo.telemetry.sampling import (
    HeadSampler,
    LinkAwareSampler,
    PresetIdGenerator,
    head_sampler_for,
)
from slo.telemetry.setup import (
    TracingConfig,
    config_from_env,
    sampler_from_config,
    setup_tracing,
    shutdown_tracing,
    tracing,
)
from slo.telemetry.spans import OFF, Tracing

__all__ = [
    "OFF",
    "HeadSampler",
    "Headers",
    "LinkAwareSampler",
    "LinkSet",
    "PresetIdGenerator",
    "Tracing",
    "TracingConfig",
    "config_from_env",
    "decode_span_contexts",
    "encode_span_contexts",
    "extract_context",
    "head_sampler_for",
    "inject_headers",
    "links_from_bytes",
    "parse_traceparent",
    "sampler_from_config",
    "setup_tracing",
    "shutdown_tracing",
    "span_context_from_headers",
    "span_link_from_headers",
    "tracing",
]
