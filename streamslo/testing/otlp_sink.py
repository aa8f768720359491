"""A small local OTLP/HTTP trace receiver for tests and benchmarks: decodes ``ExportTraceServiceRequest``.

Use it where a test needs a real OTLP endpoint on 127.0.0.1 (no mocks): start
it, point ``OTEL_EXPORTER_OTLP_ENDPOINT`` at :attr:`OtlpSink.endpoint`, and wait
for spans. It speaks ``http/protobuf`` on ``POST /v1/traces`` (gzip or deflate
bodies accepted) and answers with an empty ``ExportTraceServiceResponse``.

    with OtlpSink() as sink:
        ...export spans to sink.endpoint...
        spans = sink.wait_for(3)

Run it alone to watch a component's spans: ``python -m streamslo.testing.otlp_sink --port 4318``.
"""

from __future__ import annotations

import argparse
import gzip
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as it arrived on the wire (ids as lower-case hex, like W3C headers)."""

    service: str
    scope: str
    name: str
    kind: int  # opentelemetry.proto Span.SpanKind: 2 server, 3 client, 4 producer, 5 consumer
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    links: tuple[tuple[str, str], ...] = ()  # (trace_id, span_id)


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, which) if which else None


def decode_request(body: bytes) -> list[ReceivedSpan]:
    """Flatten one protobuf ``ExportTraceServiceRequest`` into spans."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for rs in request.resource_spans:
        res = {a.key: _value(a.value) for a in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                spans.append(
                    ReceivedSpan(
                        service=str(res.get("service.name", "")),
                        scope=ss.scope.name,
                        name=s.name,
                        kind=s.kind,
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex(),
                        attributes={a.key: _value(a.value) for a in s.attributes},
                        links=tuple((lk.trace_id.hex(), lk.span_id.hex()) for lk in s.links),
                    )
                )
    return spans


class OtlpSink:
    """A threaded OTLP/HTTP receiver on 127.0.0.1 (an ephemeral port unless ``port`` is given)."""

    def __init__(self, port: int = 0) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self.content_types: list[str] = []
        self.encodings: list[str] = []
        self._cond = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                try:
                    spans = decode_request(body)
                except Exception:  # a malformed body is the exporter's bug: answer 400
                    self.send_error(400)
                    return
                with sink._cond:
                    sink.spans.extend(spans)
                    sink.requests += 1
                    sink.content_types.append(self.headers.get("Content-Type", ""))
                    sink.encodings.append(encoding)
                    sink._cond.notify_all()
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=lambda: self._server.serve_forever(poll_interval=0.05), daemon=True)

    @property
    def endpoint(self) -> str:
        """Base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the exporter appends ``/v1/traces``)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> OtlpSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """All spans so far, once at least ``count`` arrived; raises ``TimeoutError`` otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.spans) >= count, timeout):
                raise TimeoutError(f"{len(self.spans)} of {count} spans after {timeout}s")
            return list(self.spans)

    def __enter__(self) -> OtlpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4318)
    port = parser.parse_args().port
    with OtlpSink(port) as sink:
        print(f"listening on {sink.endpoint}/v1/traces", flush=True)
        seen = 0
        while True:
            spans = sink.wait_for(seen + 1, timeout=3600)
            for s in spans[seen:]:
                print(f"{s.service} {s.trace_id}/{s.span_id} <- {s.parent_span_id or '-'} {s.name} {s.attributes}", flush=True)
            seen = len(spans)


if __name__ == "__main__":
    main()
