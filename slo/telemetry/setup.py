"""Set up the OpenTelemetry SDK once per process, from the standard ``OTEL_*`` variables.

Call :func:`setup_tracing` at component start (collector, worker, embedded
run), then use :func:`tracing` for the span helpers; call
:func:`shutdown_tracing` on stop (it also runs at interpreter exit) so the
batch of spans still queued is exported. Tracing is off unless an OTLP
endpoint is configured, so the embedded default pays nothing.

Honoured variables: ``OTEL_SDK_DISABLED``, ``OTEL_SERVICE_NAME``,
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``,
``OTEL_EXPORTER_OTLP_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``
(``http/protobuf`` default, or ``grpc``), ``OTEL_TRACES_SAMPLER`` /
``OTEL_TRACES_SAMPLER_ARG``; the exporters read the rest themselves
(headers, timeout, compression, certificates).

Tests inject an exporter and keep the provider out of the process globals::

    exporter = InMemorySpanExporter()
    provider = setup_tracing("test", exporter=exporter, install=False)
    tr = Tracing.from_provider(provider)
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from slo.telemetry.sampling import LinkAwareSampler, PresetIdGenerator
from slo.telemetry.spans import OFF, Tracing

log = logging.getLogger(__name__)

PROTOCOL_HTTP = "http/protobuf"
PROTOCOL_GRPC = "grpc"
DEFAULT_SAMPLER = "parentbased_always_on"
_DEFAULT_ENDPOINTS = {PROTOCOL_HTTP: "http://localhost:4318", PROTOCOL_GRPC: "http://localhost:4317"}


@dataclass(frozen=True)
class TracingConfig:
    """What the ``OTEL_*`` variables ask for; build with :func:`config_from_env`."""

    disabled: bool
    endpoint: str | None  # full traces endpoint (HTTP: ends in /v1/traces), None if unset
    protocol: str
    service_name: str | None
    sampler: str
    sampler_arg: str | None


def config_from_env(env: Mapping[str, str] | None = None) -> TracingConfig:
    """Read the tracing configuration from ``env`` (default ``os.environ``)."""
    env = os.environ if env is None else env
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or PROTOCOL_HTTP
    ).strip()
    if protocol not in (PROTOCOL_HTTP, PROTOCOL_GRPC):
        log.warning("OTEL_EXPORTER_OTLP_PROTOCOL=%r is not supported; using %s", protocol, PROTOCOL_HTTP)
        protocol = PROTOCOL_HTTP
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or None
    if endpoint is None and env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        endpoint = _signal_endpoint(env["OTEL_EXPORTER_OTLP_ENDPOINT"], protocol)
    return TracingConfig(
        disabled=env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true",
        endpoint=endpoint,
        protocol=protocol,
        service_name=env.get("OTEL_SERVICE_NAME") or None,
        sampler=(env.get("OTEL_TRACES_SAMPLER") or DEFAULT_SAMPLER).strip().lower(),
        sampler_arg=env.get("OTEL_TRACES_SAMPLER_ARG"),
    )


def _signal_endpoint(base: str, protocol: str) -> str:
    # The OTLP spec: the generic endpoint gets the per-signal path over HTTP; gRPC uses it as is.
    return base if protocol == PROTOCOL_GRPC else base.rstrip("/") + "/v1/traces"


def _ratio(arg: str | None) -> float:
    try:
        ratio = float(arg) if arg is not None else 1.0
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        log.warning("OTEL_TRACES_SAMPLER_ARG=%r is not a ratio in [0, 1]; using 1.0", arg)
        return 1.0
    return ratio


def sampler_from_config(config: TracingConfig) -> Sampler:
    """The sampler ``OTEL_TRACES_SAMPLER``/``_ARG`` name; unknown names fall back to the default.

    Every sampler but ``always_off`` is wrapped in :class:`LinkAwareSampler`.
    """
    name = config.sampler
    samplers: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
    }
    if name == "traceidratio":
        sampler: Sampler = TraceIdRatioBased(_ratio(config.sampler_arg))
    elif name == "parentbased_traceidratio":
        sampler = ParentBased(TraceIdRatioBased(_ratio(config.sampler_arg)))
    elif name in samplers:
        sampler = samplers[name]
    else:
        log.warning("OTEL_TRACES_SAMPLER=%r is not supported; using %s", name, DEFAULT_SAMPLER)
        sampler = samplers[DEFAULT_SAMPLER]
    return sampler if sampler is ALWAYS_OFF else LinkAwareSampler(sampler)


def _otlp_exporter(config: TracingConfig) -> SpanExporter:
    endpoint = config.endpoint or _signal_endpoint(_DEFAULT_ENDPOINTS[config.protocol], config.protocol)
    if config.protocol == PROTOCOL_GRPC:
        # Imported lazily: grpc costs ~100 ms of import and is rarely used here.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter(endpoint=endpoint)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint)


# --- process-wide state: one provider, set up once --------------------------------
_lock = threading.Lock()
_provider: TracerProvider | None = None
_tracing: Tracing = OFF
_atexit_registered = False
_global_set = False


def setup_tracing(
    service_name: str,
    *,
    enabled: bool | None = None,
    exporter: SpanExporter | None = None,
    env: Mapping[str, str] | None = None,
    install: bool = True,
    set_global: bool = True,
    batch: bool = True,
) -> TracerProvider | None:
    """Set up tracing for ``service_name``; return the provider, or ``None`` when off.

    ``enabled=None`` (default) turns tracing on when an OTLP endpoint is set
    (or ``exporter`` is given) and ``OTEL_SDK_DISABLED`` is not ``true``;
    ``True``/``False`` override the environment (a CLI flag, say).
    ``OTEL_SERVICE_NAME`` overrides ``service_name``. With ``install=True``
    the provider becomes the process's (:func:`tracing`, the OpenTelemetry
    global, an exit hook) and later calls return it unchanged; with
    ``install=False`` nothing global is touched (tests); ``set_global=False``
    installs without the OpenTelemetry global. ``batch=False`` uses a
    synchronous processor (tests that assert right after a span ends).
    """
    global _provider, _tracing, _atexit_registered, _global_set
    config = config_from_env(env)
    with _lock:
        if install and _provider is not None:
            return _provider
        on = enabled if enabled is not None else (
            not config.disabled and (exporter is not None or config.endpoint is not None)
        )
        if not on:
            return None
        resource = Resource.create({SERVICE_NAME: config.service_name or service_name})
        provider = TracerProvider(
            sampler=sampler_from_config(config),
            resource=resource,
            shutdown_on_exit=False,  # our own exit hook, so an explicit shutdown is not repeated
            id_generator=PresetIdGenerator(),  # lets Tracing sample roots before building spans
        )
        span_exporter = exporter if exporter is not None else _otlp_exporter(config)
        processor: SpanProcessor = (
            BatchSpanProcessor(span_exporter) if batch else SimpleSpanProcessor(span_exporter)
        )
        provider.add_span_processor(processor)
        if not install:
            return provider
        _provider, _tracing = provider, Tracing.from_provider(provider)
        if set_global and not _global_set:  # OpenTelemetry allows setting its global provider only once.
            trace.set_tracer_provider(provider)
            _global_set = True
        if not _atexit_registered:
            atexit.register(shutdown_tracing)
            _atexit_registered = True
        log.info(
            "tracing on: service=%s exporter=%s sampler=%s",
            resource.attributes.get(SERVICE_NAME),
            type(span_exporter).__name__,
            provider.sampler.get_description(),
        )
        return provider


def tracing() -> Tracing:
    """The process's span helpers: real after :func:`setup_tracing`, the no-op ``OFF`` otherwise."""
    return _tracing


def shutdown_tracing() -> None:
    """Export queued spans and shut the installed provider down; safe to call any time, twice."""
    global _provider, _tracing
    with _lock:
        provider, _provider, _tracing = _provider, None, OFF
    if provider is not None:
        provider.shutdown()
