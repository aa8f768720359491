"""The collector HTTP app: ``POST /v1/beacons`` plus /metrics, /healthz, /readyz, /openapi.json.

Use :func:`create_app` with a config and an exporter; the returned FastAPI
app may be extended (the embedded mode mounts its status page and registers
its engine metrics on the same ``registry``). The app's lifespan starts and
shuts down the exporter, and sets up tracing (``slo.telemetry``: off unless
an OTLP endpoint is configured) unless the caller passes its own ``tracing``.

The ingest route is a plain ASGI endpoint rather than a FastAPI handler: it
reads the body as a stream (to cap it during decompression) and decodes it
with msgspec in one pass; FastAPI's per-request model machinery is what made
the pydantic baseline slow (``bench/bench_ingest.py``). Its schema is still
published: the OpenAPI document is built from the same msgspec types the
decoder uses.

A refusal sent before the body was read (413 by ``Content-Length``, 401, 429,
415, a 413 part-way through the body) is a *lingering close*: the response,
then the rest of the body read and discarded (bounded), then the close
(``collector/asgi.py``, with the endpoint's other raw ASGI answers).

>>> from collector.exporters import InProcessExporter
>>> app = create_app(CollectorConfig(require_key=False), InProcessExporter(lambda b: None))
>>> sorted(app.openapi()["paths"])
['/healthz', '/metrics', '/readyz', '/v1/beacons']
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from starlette.routing import Route

from collector import metrics as m
from collector.asgi import (
    DRAIN_MAX_BYTES,
    DRAIN_MAX_S,
    BodyReceive,
    Headers,
    Scope,
    Send,
    respond,
    respond_lingering,
    retry_after,
)
from collector.config import CollectorConfig
from collector.exporters import Exporter, ExporterUnavailable, SubmittingExporter
from collector.keys import KeyRing, candidate_from
from collector.openapi import ingest_path_item
from collector.ratelimit import RateLimiter
from collector.schema import ENCODER, Refusal, openapi_components
from collector.validation import BODY, Receive, Refused, read_body, to_beacon
from slo import conventions as c
from slo.beacon import Beacon
from slo.telemetry import OFF, Tracing, setup_tracing, shutdown_tracing, tracing
from slo.telemetry import names as tn
from slo.telemetry.request import RequestSpans

# Scope and Send are collector.asgi's, re-exported for the apps that wrap this one.
__all__ = ["INGEST_PATH", "CollectorApp", "IngestEndpoint", "Scope", "Send", "create_app", "freeze_heap"]

log = logging.getLogger(__name__)

Reply = Callable[[int, bytes, Headers], None]
"""``reply(status, body, headers)``: how :meth:`IngestEndpoint.serve_buffered` answers."""

INGEST_PATH = "/v1/beacons"
_JSON_TYPES = (b"", b"application/json", b"text/plain")
_ENCODINGS = (b"", b"identity", b"gzip")
SERVICE_NAME = "streamslo-collector"  # OpenTelemetry service.name unless OTEL_SERVICE_NAME is set


class IngestEndpoint:
    """ASGI endpoint for ``POST /v1/beacons`` (and its CORS preflight).

    ``tr`` is the span factory (set by the app's lifespan; the no-op ``OFF``
    until then). With tracing on, each sampled request gets a ``streamslo.ingest``
    span and, when the exporter is Kafka (it has a ``topic``), a ``send <topic>``
    producer span around the export, whose W3C context goes to the exporter as
    the message's ``traceparent`` header. Both are recorded as plain data
    (:mod:`slo.telemetry.request`), several times cheaper than SDK spans.
    """

    def __init__(
        self,
        config: CollectorConfig,
        exporter: Exporter,
        metrics: m.CollectorMetrics,
        tr: Tracing = OFF,
    ) -> None:
        self.config = config
        self.exporter = exporter
        self.metrics = metrics
        self.tr = tr
        # Only a Kafka exporter gets a produce span: an in-process hand-off is not a send.
        self._topic: str | None = getattr(exporter, "topic", None)
        self.keys = KeyRing(config.keys)
        self.limiter = RateLimiter(config.rate_per_key, config.burst_per_key)
        self._origins = frozenset(o.encode() for o in config.cors_origins)
        self._retry_503 = str(config.retry_after_s).encode()
        self.drain_max_bytes = DRAIN_MAX_BYTES
        self.drain_max_s = DRAIN_MAX_S
        # The fast path (serve_buffered) needs an exporter that can start an export
        # without being awaited; others are served by the ASGI path only.
        self._submit = exporter.submit if isinstance(exporter, SubmittingExporter) else None
        self.served_fast = 0
        """Requests answered by :meth:`serve_buffered` (the fast path), for tests and debugging."""

    @property
    def fast_path(self) -> bool:
        """True when :meth:`serve_buffered` may be used: the exporter has ``submit()``."""
        return self._submit is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[bytes, bytes] = dict(scope["headers"])
        cors = self._cors_headers(headers.get(b"origin"))
        method = scope["method"]
        if method == "OPTIONS":
            await self._preflight(send, headers, cors)
            return
        if method != "POST":
            body = ENCODER.encode(Refusal(f"method {method} not allowed", "method", "method"))
            await respond(send, 405, body, [(b"allow", b"POST, OPTIONS"), *cors])
            return
        t0 = time.perf_counter()
        # With tracing off, or on but this request not drawn, nothing is built
        # and no ``with`` block is entered: even a no-op ``with`` around the
        # awaited handler cost 3-4 % of a request's CPU (bench_ingest.py --paired).
        spans = self.tr.request() if self.tr.enabled else None
        if spans is None:
            await self._handle(scope, receive, send, headers, cors, None)
        else:
            try:
                await self._handle(scope, receive, send, headers, cors, spans)
            finally:
                spans.end()
        self.metrics.request_duration.observe(time.perf_counter() - t0)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes],
        cors: Headers, span: RequestSpans | None,
    ) -> None:
        request = BodyReceive(receive)
        try:
            status, body, extra = await self._ingest(scope, request, headers, span)
        except Refused as r:
            status, body, extra = self._refused(r, span)
            # With "Expect: 100-continue" the client waits for us: nothing to drain,
            # and reading would make the server send a 100 after the final status.
            if not request.ended and b"100-continue" not in headers.get(b"expect", b"").lower():
                await respond_lingering(send, request, status, body, extra + cors,
                                        self.drain_max_bytes, self.drain_max_s)
                return
        except Exception:
            status, body, extra = self._internal_error(span)
        await respond(send, status, body, extra + cors)

    async def _ingest(
        self, scope: Scope, receive: Receive, headers: dict[bytes, bytes], span: RequestSpans | None
    ) -> tuple[int, bytes, Headers]:
        gzipped = self._check_head(headers, scope["headers"], scope.get("query_string", b""))
        raw = await read_body(receive, limit=self.config.max_body_bytes, gzipped=gzipped)
        beacon = to_beacon(raw, self.config, time.time())
        n = len(beacon.events)
        t0 = time.perf_counter()
        trace_headers = self._start_send(beacon, n, span)
        try:
            # Exporters bound their own wait (KafkaExporter.send_timeout_s,
            # InProcessExporter.timeout_s): an asyncio.timeout here would cost
            # ~10 us per request for sinks that never block.
            await self.exporter.export(beacon, trace_headers)
        except ExporterUnavailable as exc:
            self._end_send(span, exc)
            return self._unavailable(exc, n, span)
        except BaseException as exc:
            self._end_send(span, exc)
            raise
        self._end_send(span, None)
        return self._accepted(n, t0, span)

    def serve_buffered(
        self, raw_headers: Headers, headers: dict[bytes, bytes], query: bytes, body: bytes, reply: Reply
    ) -> None:
        """Answer a ``POST`` whose whole identity-encoded body is in hand, without a task.

        The fast path of ``collector/fastpath.py``: the same checks, metrics,
        spans and answers as the ASGI path, but ``reply(status, body, headers)``
        is called (now, or from the exporter's ``done`` callback) instead of
        awaiting the export. Only for exporters with ``submit()``. The whole body has
        been read, so a refusal here is an ordinary answer, not a lingering close.
        ``headers`` is ``dict(raw_headers)``.
        """
        self.served_fast += 1
        t0 = time.perf_counter()
        cors = self._cors_headers(headers.get(b"origin"))
        span = self.tr.request() if self.tr.enabled else None

        def finish(answer: tuple[int, bytes, Headers]) -> None:
            status, out, extra = answer
            reply(status, out, extra + cors)
            if span is not None:
                span.end()
            self.metrics.request_duration.observe(time.perf_counter() - t0)

        try:
            self._check_head(headers, raw_headers, query)
            beacon = to_beacon(body, self.config, time.time())
        except Refused as r:
            finish(self._refused(r, span))
            return
        except Exception:
            finish(self._internal_error(span))
            return
        n = len(beacon.events)
        t_export = time.perf_counter()
        trace_headers = self._start_send(beacon, n, span)

        def settled(exc: BaseException | None) -> None:
            self._end_send(span, exc)
            if exc is None:
                finish(self._accepted(n, t_export, span))
            elif isinstance(exc, ExporterUnavailable):
                finish(self._unavailable(exc, n, span))
            else:
                log.error("ingest: unexpected error", exc_info=exc)
                finish(self._internal_error(span, logged=True))

        assert self._submit is not None, "serve_buffered needs an exporter with submit()"
        try:
            self._submit(beacon, settled, trace_headers)
        except ExporterUnavailable as exc:  # not ready: refused at once, settled not called
            settled(exc)
        except Exception as exc:  # a sink's bug, raised before it could call settled
            self._end_send(span, exc)
            finish(self._internal_error(span))

    def _check_head(self, headers: dict[bytes, bytes], raw_headers: Headers, query: bytes) -> bool:
        """The checks that need no body: media type, encoding, key, rate, length; True if gzipped."""
        ctype = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if ctype not in _JSON_TYPES:
            raise Refused(415, c.REASON_UNSUPPORTED_MEDIA, "content-type",
                          "use application/json or text/plain")
        encoding = headers.get(b"content-encoding", b"").strip().lower()
        if encoding not in _ENCODINGS:
            raise Refused(415, c.REASON_UNSUPPORTED_MEDIA, "content-encoding",
                          "only gzip or identity encoding is accepted")
        key = self._authenticate(raw_headers, query)
        wait = self.limiter.take(key)
        if wait > 0:
            raise Refused(429, c.REASON_RATE_LIMITED, "key",
                          "rate limit exceeded for this ingest key", retry_after=wait)
        limit = self.config.max_body_bytes
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise Refused(413, c.REASON_TOO_LARGE, BODY, f"body exceeds {limit} bytes")
        return encoding == b"gzip"

    def _start_send(self, beacon: Beacon, n: int, span: RequestSpans | None) -> list[tuple[str, bytes]] | None:
        """On a sampled request: its events attribute and, for Kafka, the producer span's traceparent."""
        if span is None:
            return None
        span.set_attribute(tn.ATTR_EVENTS, n)
        if self._topic is None:
            return None
        # Only sampled requests carry a traceparent: the others pay nothing for it.
        return span.start_send(self._topic, beacon.session_id)

    def _end_send(self, span: RequestSpans | None, exc: BaseException | None) -> None:
        if span is not None and self._topic is not None:
            span.end_send(exc)

    def _accepted(self, n: int, t_export: float, span: RequestSpans | None) -> tuple[int, bytes, Headers]:
        self.metrics.export_duration.observe(time.perf_counter() - t_export)
        self.metrics.beacons[c.OUTCOME_ACCEPTED].inc()
        self.metrics.events[c.OUTCOME_ACCEPTED].inc(n)
        if span is not None:
            span.set_attribute(tn.ATTR_OUTCOME, c.OUTCOME_ACCEPTED)
        return 202, b'{"status":"accepted","events":%d}' % n, []

    def _unavailable(self, exc: ExporterUnavailable, n: int, span: RequestSpans | None) -> tuple[int, bytes, Headers]:
        self.metrics.export_failures.inc()
        self.metrics.beacons[c.OUTCOME_FAILED].inc()
        self.metrics.events[c.OUTCOME_FAILED].inc(n)
        body = ENCODER.encode(Refusal(f"exporter unavailable: {exc}", BODY, "unavailable"))
        if span is not None:
            _span_outcome(span, c.OUTCOME_FAILED, "unavailable", 503)
        return 503, body, [(b"retry-after", self._retry_503)]

    def _refused(self, r: Refused, span: RequestSpans | None) -> tuple[int, bytes, Headers]:
        self.metrics.refused[r.reason].inc()
        self.metrics.beacons[c.OUTCOME_REFUSED].inc()
        if r.events:
            self.metrics.events[c.OUTCOME_REFUSED].inc(r.events)
        body = ENCODER.encode(Refusal(r.message, r.field, r.reason))
        extra = [(b"retry-after", retry_after(r.retry_after))] if r.retry_after else []
        if span is not None:
            _span_outcome(span, c.OUTCOME_REFUSED, r.reason, r.status, r.events)
        return r.status, body, extra

    def _internal_error(self, span: RequestSpans | None, logged: bool = False) -> tuple[int, bytes, Headers]:
        """A bug (ours or a sink's), never bad input: an honest, counted 500, the traceback in the log."""
        if not logged:
            log.exception("ingest: unexpected error")
        self.metrics.beacons[c.OUTCOME_FAILED].inc()
        if span is not None:
            _span_outcome(span, c.OUTCOME_FAILED, "internal", 500)
        return 500, ENCODER.encode(Refusal("internal error", BODY, "internal")), []

    def _authenticate(self, raw_headers: Headers, query: bytes) -> str:
        """The bucket id of the request: its matched key, or "" when keys are optional."""
        candidate = candidate_from(raw_headers, query)
        key = self.keys.match(candidate)
        if key is not None:
            return key
        if candidate is None and not self.config.require_key:
            return ""
        # Never echo or log the presented key.
        raise Refused(401, c.REASON_UNAUTHORIZED, "key",
                      "missing or unknown ingest key (X-Ingest-Key header or ?key=)")

    def _cors_headers(self, origin: bytes | None) -> Headers:
        if origin is None or not (origin in self._origins or b"*" in self._origins):
            return []
        return [
            (b"access-control-allow-origin", origin),
            (b"access-control-expose-headers", b"retry-after"),
            (b"vary", b"origin"),
        ]

    async def _preflight(
        self, send: Send, headers: dict[bytes, bytes], cors: Headers
    ) -> None:
        if b"origin" in headers and not cors:
            body = ENCODER.encode(Refusal("origin not allowed", "origin", "cors"))
            await respond(send, 403, body, [])
            return
        allow = [
            (b"access-control-allow-methods", b"POST"),
            (b"access-control-allow-headers", b"content-type, content-encoding, x-ingest-key"),
            (b"access-control-max-age", b"600"),
            (b"allow", b"POST, OPTIONS"),
        ]
        await respond(send, 204, b"", allow + cors if cors else [(b"allow", b"POST, OPTIONS")])


def _span_outcome(span: RequestSpans, outcome: str, reason: str, status: int, events: int = 0) -> None:
    """Record a refused or failed request on its ingest span."""
    span.set_attribute(tn.ATTR_OUTCOME, outcome)
    span.set_attribute(tn.ATTR_REASON, reason)
    span.set_attribute(tn.HTTP_STATUS, status)
    if events:
        span.set_attribute(tn.ATTR_EVENTS, events)
    if status >= 500:  # HTTP semconv: a server span is an error on 5xx only
        span.set_error(reason)


def freeze_heap() -> None:
    """Move everything alive after start-up out of the garbage collector's sight.

    Use once the app is built and its exporter started: the imported modules,
    FastAPI's routes and the producer are never garbage, yet every full
    collection walked all of them again. ``gc.freeze()`` leaves only what
    requests allocate to be scanned (measured: bench/bench_ingest.py --paired).
    """
    gc.collect()
    gc.freeze()


class CollectorApp(FastAPI):
    """FastAPI with a fast path: ``POST /v1/beacons`` skips the middleware stack and router.

    FastAPI's middleware and routing cost about as much CPU per request as
    the whole ingest endpoint (measured: bench/bench_ingest.py), so requests
    for the ingest path go straight to :class:`IngestEndpoint`, which does its
    own error handling and CORS. Everything else (``/metrics``, routes other
    components mount, middleware they add) goes through FastAPI as usual;
    middleware added later therefore does not see ingest requests.
    """

    def __init__(self, ingest: IngestEndpoint, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ingest = ingest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == INGEST_PATH:
            await self.ingest(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    config: CollectorConfig,
    exporter: Exporter,
    registry: CollectorRegistry | None = None,
    *,
    tracer: Tracing | None = None,
) -> FastAPI:
    """The collector app; ``/metrics`` serves ``registry`` (a fresh one when None).

    ``tracer=None``: the lifespan sets up the process's tracing from the
    ``OTEL_*`` environment (``setup_tracing("streamslo-collector")``) and
    shuts it down on stop. A given ``tracer`` (tests, a host app that owns
    tracing) is used as is and left running.
    """
    config.validate()
    registry = registry if registry is not None else CollectorRegistry()
    metrics = m.CollectorMetrics(registry, exporter=getattr(exporter, "name", type(exporter).__name__))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_tracing = tracer is None
        if own_tracing:
            setup_tracing(SERVICE_NAME)
        tr = tracing() if tracer is None else tracer
        ingest.tr = tr
        await exporter.start()
        freeze_heap()
        try:
            yield
        finally:
            await exporter.shutdown()
            m.mark_process_dead(os.getpid())
            ingest.tr = OFF
            if own_tracing:
                shutdown_tracing()  # flushes the spans still queued

    ingest = IngestEndpoint(config, exporter, metrics)
    app = CollectorApp(ingest, title="streamslo collector", version="1", lifespan=lifespan)
    app.state.collector_config = config
    app.state.exporter = exporter
    app.state.registry = registry
    # A Route whose endpoint is not a function is mounted as a raw ASGI app.
    app.router.routes.append(Route(INGEST_PATH, ingest, methods=["POST", "OPTIONS"],
                                   include_in_schema=False))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "the exporter is not ready"}})
    async def readyz() -> JSONResponse:
        """Readiness: the exporter can acknowledge beacons (Kafka reachable)."""
        if exporter.ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503,
                            headers={"Retry-After": str(config.retry_after_s)})

    @app.get("/metrics", response_class=Response,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}})
    async def metrics_endpoint() -> Response:
        """Prometheus text exposition of the collector (and whatever shares its registry)."""
        return Response(m.exposition(registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, routes=app.routes,
                              description="Beacon ingest API (wire format v1).")
            doc.setdefault("components", {}).setdefault("schemas", {}).update(openapi_components())
            doc["paths"][INGEST_PATH] = ingest_path_item(config)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
