"""The ingest fast path (``collector/fastpath.py``) through a real uvicorn server, byte by byte.

``IngestProtocol`` answers ``POST /v1/beacons`` without building an ASGI
scope; every other request still goes to the app. These tests are black-box:
a raw socket client (so pipelining, HTTP/1.0 and half-written requests are
spelled out in bytes) talks to the collector on 127.0.0.1, served either with
the fast path (``http=IngestProtocol``) or by plain uvicorn
(``http="httptools"``, every request an ASGI task), the reference the fast
path must not differ from. ``IngestEndpoint.served_fast`` tells which path a
request took, so a fast path that never triggers fails the tests.

An export can be held in flight: the sink holds every beacon of session
:data:`HELD` on an ``asyncio.Event`` until the test releases it, which is
how ordering, disconnects and graceful shutdown are exercised.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import select
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from collector.app import CollectorApp, create_app
from collector.cli import uvicorn_options
from collector.config import CollectorConfig
from collector.exporters import ExporterUnavailable, InProcessExporter
from collector.fastpath import IngestProtocol
from slo.beacon import Beacon
from slo.limits import MAX_EVENTS
from slo.telemetry import Tracing, setup_tracing
from streamslo.testing.ports import serve_in_thread

KEY = "test-key-0123456789"
ORIGIN = "https://player.example"
HELD = "held-session"  # the sink holds this session's exports until released
UNAVAILABLE = "unavailable-session"  # the sink refuses this session's exports at once (503)
UNAVAILABLE_LATER = "unavailable-later-session"  # ... or after a wait (503)
TIMEOUT_S = 30.0  # generous: the machine is shared
QUIET_S = 0.3  # how long "nothing arrives" is watched for
MAX_BODY = 4096  # a small max_body_bytes, so a body above it is cheap
NOW = time.time()  # one clock for every body, so both servers get the very same bytes

FAST, PLAIN = "fast path", "plain ASGI"
SERVED_BY = {FAST: uvicorn_options("uvicorn"), PLAIN: uvicorn_options("uvicorn-asgi")}  # as the CLI runs them
KINDS = [pytest.param(FAST, id="uvicorn with the fast path"),
         pytest.param(PLAIN, id="plain uvicorn (the reference)")]


# --- the server ---------------------------------------------------------------------------------


class Sink:
    """Collects exported beacons; holds :data:`HELD`'s until :meth:`release`.

    The beacons of :data:`UNAVAILABLE` and :data:`UNAVAILABLE_LATER` are refused,
    at once or after a wait (an export that fails after it was started).
    """

    def __init__(self) -> None:
        self.beacons: list[Beacon] = []
        self.held = threading.Event()  # set once a held export is waiting
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gate: asyncio.Event | None = None
        self._released = False

    def __call__(self, beacon: Beacon) -> Awaitable[None] | None:
        if beacon.session_id == UNAVAILABLE:
            raise ExporterUnavailable("the test's sink is full")
        if beacon.session_id == UNAVAILABLE_LATER:
            return self._refuse_later()
        self.beacons.append(beacon)
        return self._hold() if beacon.session_id == HELD else None

    async def _refuse_later(self) -> None:
        await asyncio.sleep(0.01)
        raise ExporterUnavailable("the test's sink filled up")

    async def _hold(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._gate = asyncio.Event()
        self.held.set()
        await self._gate.wait()

    def release(self) -> None:
        """Let the held export finish (called from the test's thread)."""
        assert self.held.wait(TIMEOUT_S), "no export was held"
        assert self._loop is not None and self._gate is not None
        self._released = True
        self._loop.call_soon_threadsafe(self._gate.set)

    def release_forgotten(self) -> None:
        """Release an export a failed test left held, so that its server can stop."""
        if self.held.is_set() and not self._released:
            self.release()

    def reset(self) -> None:
        self.beacons.clear()
        self.held.clear()
        self._released = False


class Exporter(InProcessExporter):
    """The in-process exporter, calling ``before_shutdown`` when the app's lifespan shuts it down."""

    def __init__(self, sink: Sink) -> None:
        super().__init__(sink, timeout_s=TIMEOUT_S)
        self.before_shutdown: Callable[[], None] = lambda: None

    async def shutdown(self) -> None:
        self.before_shutdown()
        await super().shutdown()


class Collector:
    """A fresh collector app on a real uvicorn server in a thread, with or without the fast path.

    uvicorn runs with ``streamslo collector``'s options for ``kind`` unless ``options`` are given.
    A ``send_buffer`` (bytes) shrinks the kernel's send buffer of the server's sockets, so that
    a client that does not read soon fills uvicorn's own write buffer (its flow control).
    """

    def __init__(self, kind: str, *, options: dict[str, Any] | None = None, send_buffer: int = 0,
                 tracer: Tracing | None = None, **config: Any) -> None:
        self.kind = kind
        self.sink = Sink()
        self.exporter = Exporter(self.sink)
        settings: dict[str, Any] = {"regions": ("eu-west-1",), "keys": frozenset({KEY}), **config}
        app = create_app(CollectorConfig(**settings), self.exporter, tracer=tracer)
        assert isinstance(app, CollectorApp)
        self.app = app
        # log_config=None: uvicorn's records propagate to the root logger, where the tests see them.
        self.server = uvicorn.Server(uvicorn.Config(
            app, host="127.0.0.1", port=0, lifespan="on", log_config=None, log_level="warning",
            **(SERVED_BY[kind] if options is None else options),
        ))
        sockets = []
        if send_buffer:  # accepted connections inherit the listening socket's buffer size
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
            listener.bind(("127.0.0.1", 0))
            sockets.append(listener)
        self._sockets = sockets or None

    def __enter__(self) -> Collector:
        self.thread = serve_in_thread(self.server, sockets=self._sockets, timeout=TIMEOUT_S)
        return self

    def __exit__(self, *exc: object) -> None:
        self.sink.release_forgotten()
        self.server.should_exit = True
        self.thread.join(TIMEOUT_S)

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    @property
    def served_fast(self) -> int:
        return self.app.ingest.served_fast

    def connect(self, receive_buffer: int = 0) -> Client:
        """A new connection; a ``receive_buffer`` (bytes) keeps the kernel from reading far ahead for it."""
        sock = socket.socket()
        if receive_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.settimeout(TIMEOUT_S)
        sock.connect(("127.0.0.1", self.port))
        return Client(sock)

    def exchange(self, request: bytes) -> Response:
        """One request on a new connection, its answer."""
        with self.connect() as client:
            client.send(request)
            return client.response()


@pytest.fixture(scope="module", params=KINDS)
def shared(request: pytest.FixtureRequest) -> Iterator[Collector]:
    with Collector(request.param) as collector:
        yield collector


@pytest.fixture()
def collector(shared: Collector) -> Collector:
    """The module's server of one kind, its sink emptied."""
    shared.sink.reset()
    return shared


@pytest.fixture(scope="module")
def fast() -> Iterator[Collector]:
    """A server with the fast path, for what plain uvicorn does differently on purpose."""
    with Collector(FAST) as collector:
        yield collector


class Records(logging.Handler):
    """Keeps every record at ``level`` or above."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def no_error_logged() -> Iterator[None]:
    """Fail a test during which anything (uvicorn, asyncio, the collector) logged an ERROR."""
    handler = Records(logging.ERROR)
    # uvicorn's logger may have been set not to propagate by another test's server.
    loggers = [logging.getLogger(), logging.getLogger("uvicorn")]
    for logger in loggers:
        logger.addHandler(handler)
    yield
    for logger in loggers:
        logger.removeHandler(handler)
    assert not handler.records, [r.getMessage() for r in handler.records]


# --- the client ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]]  # names lower-cased, in the order sent
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name]
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None

    @property
    def field(self) -> str | None:
        """The ``field`` a refusal names."""
        return json.loads(self.body).get("field") if self.status >= 400 else None


class Client:
    """A raw HTTP/1.1 client on one connection: writes bytes, parses answers in order."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _read_more(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, f"the server closed the connection; unparsed: {self._buffer!r}"
        self._buffer += chunk

    def response(self) -> Response:
        """The next final answer (a ``100 Continue`` before it is skipped); needs a Content-Length."""
        while True:
            while b"\r\n\r\n" not in self._buffer:
                self._read_more()
            head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
            status_line, *lines = head.decode("latin-1").split("\r\n")
            status = int(status_line.split()[1])
            if status >= 200:
                break
        headers = [(k.strip().lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines)]
        length = int(dict(headers)["content-length"])
        while len(self._buffer) < length:
            self._read_more()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return Response(status, headers, body)

    def quiet(self) -> bool:
        """True when no byte arrives for :data:`QUIET_S`."""
        return not self._buffer and not select.select([self.sock], [], [], QUIET_S)[0]

    def closed_by_server(self) -> bool:
        """True when the server closes the connection with nothing more sent."""
        try:
            return not self._buffer and self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


# --- requests, as bytes --------------------------------------------------------------------------


def beacon(events: list[dict[str, Any]] | None = None, session: str = "sess-1", **changes: Any) -> bytes:
    """A valid beacon's JSON (timestamps around :data:`NOW`), or one with ``events``/fields changed."""
    body: dict[str, Any] = {
        "v": 1, "session_id": session, "seq": 7, "sent_at": NOW, "region": "eu-west-1",
        "sdk": "web/1.4.0", "kind": "rum",
        "events": events if events is not None else [
            {"type": "first_frame", "ts": NOW - 2, "value_ms": 182.4},
            {"type": "interaction", "ts": NOW - 1, "value_ms": 96.0, "name": "poll_vote"},
            {"type": "error", "ts": NOW - 0.5, "code": "MEDIA_ERR_NETWORK", "fatal": True},
        ],
        **changes,
    }
    return json.dumps(body).encode()


ONE_EVENT = [{"type": "first_frame", "ts": NOW - 1, "value_ms": 120.0}]


def http(body: bytes = b"", *, method: str = "POST", target: str = "/v1/beacons", version: str = "1.1",
         **headers: str | None) -> bytes:
    """A request's bytes: host, JSON content type, the ingest key and Content-Length unless overridden.

    Header names are given with ``_`` for ``-``; ``None`` leaves a default header out.
    """
    fields: dict[str, str | None] = {"host": "127.0.0.1", "content-type": "application/json",
                                     "x-ingest-key": KEY, "content-length": str(len(body))}
    fields.update({k.replace("_", "-"): v for k, v in headers.items()})
    lines = [f"{method} {target} HTTP/{version}"] + [f"{k}: {v}" for k, v in fields.items() if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(body: bytes, piece: int = 100) -> bytes:
    """``body`` in the chunked transfer coding."""
    chunks = [body[i:i + piece] for i in range(0, len(body), piece)]
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


GOOD = http(beacon())
GET_HEALTHZ = http(method="GET", target="/healthz", content_type=None, x_ingest_key=None, content_length=None)
GARBAGE = b"THIS IS NOT HTTP\r\n\r\n"


# --- 1. parity with plain uvicorn -----------------------------------------------------------------


def headers_compared(response: Response) -> list[tuple[str, str]]:
    """The headers both servers must agree on: all but ``date``, ``server`` and ``connection``.

    ``connection`` differs on purpose: plain uvicorn answers a refusal made before
    the body was read with a lingering close, the fast path has the whole body
    and keeps the connection (checked on its own below).
    """
    return sorted((k, v) for k, v in response.headers if k not in ("date", "server", "connection"))


def both_answer(config: dict[str, Any], requests: list[bytes]) -> tuple[list[Response], list[Response], int]:
    """Each request on a new connection to a fresh fast and a fresh plain collector.

    Returns the fast answers, the plain answers, and how many requests the fast path served.
    """
    with Collector(FAST, **config) as fast, Collector(PLAIN, **config) as plain:
        before = fast.served_fast
        fast_answers = [fast.exchange(r) for r in requests]
        served = fast.served_fast - before
        plain_answers = [plain.exchange(r) for r in requests]
        assert plain.served_fast == 0, "the reference server took the fast path"
    return fast_answers, plain_answers, served


Expect = list[tuple[int, str | None]]  # per request: the status, and the field a refusal names
CORS = ("access-control-allow-origin", "access-control-expose-headers", "vary")


@pytest.mark.parametrize(
    ("config", "requests", "expect", "last_has"),
    [
        pytest.param({}, [GOOD], [(202, None)], (), id="a good beacon is accepted"),
        pytest.param({}, [http(beacon(), content_type="text/plain;charset=UTF-8")], [(202, None)], (),
                     id="a sendBeacon text/plain beacon is accepted"),
        pytest.param({}, [http(beacon(), target=f"/v1/beacons?key={KEY}", x_ingest_key=None)], [(202, None)], (),
                     id="a beacon keyed by the query string is accepted"),
        pytest.param({}, [http(beacon(), target=f"/v1/beacons?key={KEY}#frag", x_ingest_key=None)], [(202, None)],
                     (), id="a beacon keyed by the query string before a fragment is accepted"),
        pytest.param({}, [http(b'{"v":1,"session_id":')], [(400, "body")], (), id="bad JSON is a 400"),
        pytest.param({}, [http(beacon([{"type": "first_frame", "ts": NOW, "value_ms": "fast"}]))],
                     [(422, "events[0].value_ms")], (), id="a schema error is a 422 naming the field"),
        pytest.param({}, [http(beacon([{"type": "stall", "ts": NOW}]))], [(422, "events[0].value_ms")], (),
                     id="a stall without its value_ms is a 422 naming the field"),
        pytest.param({}, [http(beacon(), x_ingest_key=None)], [(401, "key")], (), id="a missing key is a 401"),
        pytest.param({}, [http(beacon(), x_ingest_key="not-a-known-key")], [(401, "key")], (),
                     id="an unknown key is a 401"),
        pytest.param({}, [http(beacon(), content_type="application/xml")], [(415, "content-type")], (),
                     id="a wrong content type is a 415"),
        pytest.param({}, [http(beacon([{"type": "first_frame", "ts": NOW + 3600, "value_ms": 5.0}]))],
                     [(422, "events[0].ts")], (), id="a far-future event is a 422"),
        pytest.param({}, [http(beacon(ONE_EVENT * (MAX_EVENTS + 1)))], [(422, "events")], (),
                     id="too many events is a 422"),
        pytest.param({"rate_per_key": 0.001, "burst_per_key": 1.0}, [GOOD, GOOD], [(202, None), (429, "key")],
                     ("retry-after",), id="the second beacon over a tiny rate is a 429 with retry-after"),
        pytest.param({}, [http(beacon(session=UNAVAILABLE))], [(503, "body")], ("retry-after",),
                     id="an exporter that pushes back is a 503 with retry-after"),
        pytest.param({}, [http(beacon(session=UNAVAILABLE_LATER))], [(503, "body")], ("retry-after",),
                     id="an export that fails after a wait is a 503 with retry-after"),
        pytest.param({}, [http(beacon(), content_encoding="identity")], [(202, None)], (),
                     id="an identity-encoded beacon is accepted"),
        pytest.param({"max_body_bytes": MAX_BODY}, [http(beacon().ljust(MAX_BODY))], [(202, None)], (),
                     id="a beacon of exactly max_body_bytes is accepted"),
        pytest.param({}, [http(b"")], [(400, "body")], (), id="an empty body is a 400"),
        pytest.param({"cors_origins": (ORIGIN,)}, [http(beacon(), origin=ORIGIN)], [(202, None)], CORS,
                     id="a beacon from an allowed origin gets the CORS headers"),
        pytest.param({"cors_origins": (ORIGIN,)}, [http(beacon(), origin=ORIGIN, x_ingest_key=None)],
                     [(401, "key")], CORS, id="a refusal to an allowed origin gets the CORS headers"),
        pytest.param({"cors_origins": (ORIGIN,)}, [http(beacon(), origin="https://evil.example")],
                     [(202, None)], (), id="a beacon from another origin gets no CORS headers"),
    ],
)
def test_the_fast_path_answers_exactly_as_plain_uvicorn(
    config: dict[str, Any], requests: list[bytes], expect: Expect, last_has: tuple[str, ...]
) -> None:
    fast, plain, served = both_answer(config, requests)
    assert [(r.status, r.field) for r in plain] == expect  # the table itself is right
    assert {k for k, _ in plain[-1].headers} >= set(last_has)
    assert [(r.status, r.body) for r in fast] == [(r.status, r.body) for r in plain]
    assert [headers_compared(r) for r in fast] == [headers_compared(r) for r in plain]
    assert served == len(requests), "the fast path did not serve these requests"
    # A fast-path refusal has read the whole body: no lingering close.
    assert [r.header("connection") for r in fast] == [None] * len(fast)


@pytest.mark.parametrize(
    ("request_bytes", "expect", "same_body"),
    [
        pytest.param(http(gzip.compress(beacon()), content_encoding="gzip"), (202, None), True,
                     id="a gzip body goes to the app and is accepted"),
        pytest.param(http(chunked(beacon()), content_length=None, transfer_encoding="chunked"), (202, None), True,
                     id="a chunked body goes to the app and is accepted"),
        pytest.param(http(beacon(), expect="100-continue"), (202, None), True,
                     id="an Expect 100-continue beacon goes to the app and is accepted"),
        pytest.param(http(method="OPTIONS", origin=ORIGIN, access_control_request_method="POST",
                          content_type=None, content_length=None), (204, None), True,
                     id="a CORS preflight goes to the app"),
        pytest.param(http(method="GET", target="/metrics", content_type=None, content_length=None), (200, None),
                     False, id="GET /metrics goes to the app"),
        pytest.param(http(method="GET", content_length=None), (405, "method"), True,
                     id="a GET of the ingest path goes to the app and is a 405"),
        pytest.param(http(beacon(), target="/v1/beacon"), (404, None), True,
                     id="a POST to another path goes to the app and is a 404"),
        pytest.param(http(b"x" * (MAX_BODY + 1)), (413, "body"), True,
                     id="a Content-Length above max_body_bytes goes to the app and is a 413"),
    ],
)
def test_a_request_the_fast_path_does_not_take_gets_the_apps_answer(
    request_bytes: bytes, expect: tuple[int, str | None], same_body: bool
) -> None:
    config = {"cors_origins": (ORIGIN,), "max_body_bytes": MAX_BODY}
    [fast], [plain], served = both_answer(config, [request_bytes])
    assert served == 0, "the fast path took a request it must leave to the app"
    assert (plain.status, plain.field) == expect
    assert fast.status == plain.status
    if same_body:  # /metrics carries its counters' creation times
        assert fast.body == plain.body
        assert headers_compared(fast) == headers_compared(plain)
        assert fast.header("connection") == plain.header("connection")


def what_arrives(collector: Collector, request: bytes) -> bytes:
    """Every byte the server sends within :data:`QUIET_S` of ``request``, less its ``date`` line."""
    with collector.connect() as client:
        client.send(request)
        received = b""
        while select.select([client.sock], [], [], QUIET_S)[0]:
            chunk = client.sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return b"".join(line for line in received.splitlines(keepends=True) if not line.startswith(b"date:"))


@pytest.mark.parametrize(
    "protocol",
    [
        pytest.param("websocket", id="an upgrade to websocket gets plain uvicorn's handshake"),
        pytest.param("h2c", id="an upgrade to h2c gets plain uvicorn's answer"),
    ],
)
def test_an_upgrade_request_to_the_ingest_path_is_left_to_uvicorn(protocol: str) -> None:
    """``Connection: Upgrade`` with a body: uvicorn's upgrade handling, not a fast answer (nor an ERROR)."""
    upgrade = http(beacon(), connection="Upgrade", upgrade=protocol)
    with Collector(FAST) as fast, Collector(PLAIN) as plain:
        received = {kind: what_arrives(server, upgrade) for kind, server in ((FAST, fast), (PLAIN, plain))}
        assert (fast.served_fast, fast.sink.beacons) == (0, [])
        assert fast.exchange(GOOD).status == 202  # the server goes on serving
    assert received[FAST] == received[PLAIN]
    # no_error_logged checks that nothing was logged at ERROR meanwhile


def test_uvicorn_run_with_its_own_defaults_takes_the_fast_path() -> None:
    """As the module doc shows it: uvicorn's proxy-headers middleware, date and server headers on."""
    defaults: dict[str, Any] = {"http": IngestProtocol, "loop": "uvloop"}
    with Collector(FAST, options=defaults) as fast:
        response = fast.exchange(GOOD)
        assert (response.status, fast.served_fast) == (202, 1)
    assert response.header("server") == "uvicorn" and response.header("date") is not None


# --- 2. the same metrics ------------------------------------------------------------------------


def collector_counts(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every ``streamslo_*`` counter sample and histogram count, by name and labels."""
    counts = {}
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if s.name.startswith("streamslo_") and s.name.endswith(("_total", "_count")):
                counts[s.name, tuple(sorted(s.labels.items()))] = s.value
    return counts


METRICS_SEQUENCE = [
    GOOD, GOOD, http(beacon(ONE_EVENT)), http(b"{not json"), http(beacon([{"type": "stall", "ts": NOW}])),
    http(beacon(), x_ingest_key=None), http(beacon(), x_ingest_key="not-a-known-key"),
    http(beacon(), content_type="application/xml"),
    http(beacon([{"type": "first_frame", "ts": NOW + 3600, "value_ms": 5.0}])),
    http(beacon([{"type": "first_frame", "ts": NOW - 7200, "value_ms": 5.0}])),
    http(beacon(ONE_EVENT * (MAX_EVENTS + 1))), http(beacon(session=UNAVAILABLE)),
    http(gzip.compress(beacon()), content_encoding="gzip"),
    http(chunked(beacon()), content_length=None, transfer_encoding="chunked"),
    http(b"x" * (MAX_BODY + 1)),
]


def test_after_the_same_requests_both_servers_count_the_same() -> None:
    metrics = http(method="GET", target="/metrics", content_type=None, content_length=None)
    with Collector(FAST, max_body_bytes=MAX_BODY) as fast, Collector(PLAIN, max_body_bytes=MAX_BODY) as plain:
        for request in METRICS_SEQUENCE:
            assert fast.exchange(request).status == plain.exchange(request).status
        fast_counts = collector_counts(fast.exchange(metrics).body.decode())
        plain_counts = collector_counts(plain.exchange(metrics).body.decode())
        assert fast.served_fast > 0
    assert fast_counts == plain_counts
    accepted = ("streamslo_collector_beacons_total", (("outcome", "accepted"),))
    assert plain_counts[accepted] == 5  # the table's good beacons: not a comparison of zeros


def test_with_tracing_on_both_servers_record_the_same_spans() -> None:
    """Every request sampled: each gets the same ``streamslo.ingest`` span, whichever path served it."""
    requests = [GOOD, http(beacon(), x_ingest_key=None), http(beacon([{"type": "stall", "ts": NOW}])),
                http(beacon(session=UNAVAILABLE)), http(beacon(session=UNAVAILABLE_LATER)),
                http(gzip.compress(beacon()), content_encoding="gzip")]
    recorded = {}
    for kind in (FAST, PLAIN):
        memory = InMemorySpanExporter()
        provider = setup_tracing("test-fastpath", exporter=memory, env={}, install=False, batch=False)
        assert provider is not None
        try:
            with Collector(kind, tracer=Tracing.from_provider(provider)) as collector:
                for request in requests:
                    collector.exchange(request)
                served = collector.served_fast
        finally:
            provider.shutdown()
        recorded[kind] = [(s.name, s.kind, s.status.status_code, s.parent is None, sorted((s.attributes or {}).items()))
                          for s in memory.get_finished_spans()]
        assert served == (len(requests) - 1 if kind == FAST else 0)
    assert len(recorded[PLAIN]) == len(requests)
    assert recorded[FAST] == recorded[PLAIN]


# --- 3. keep-alive ------------------------------------------------------------------------------


def test_fifty_beacons_on_one_connection_are_all_answered(collector: Collector) -> None:
    before = collector.served_fast
    with collector.connect() as client:
        for i in range(50):
            client.send(http(beacon(seq=i)))
            assert client.response().status == 202
    assert [b.seq for b in collector.sink.beacons] == list(range(50))
    assert collector.served_fast - before == (50 if collector.kind == FAST else 0)


@pytest.mark.parametrize("kind", KINDS)
def test_an_idle_connection_after_a_beacon_is_closed_after_the_keep_alive_timeout(kind: str) -> None:
    with Collector(kind, options={**SERVED_BY[kind], "timeout_keep_alive": 1}) as collector, \
            collector.connect() as client:
        client.send(GOOD)
        assert client.response().status == 202
        t0 = time.monotonic()
        assert client.closed_by_server()
        idle = time.monotonic() - t0
    assert 0.5 < idle < 5.0, idle


KEEP_ALIVE_S = 0.5  # a short keep-alive timeout, for the tests that wait it out


def closed_after(client: Client) -> float:
    """Seconds until the server closes ``client``'s connection, which must stay silent meanwhile."""
    t0 = time.monotonic()
    assert client.closed_by_server()
    return time.monotonic() - t0


@pytest.mark.parametrize(
    ("kind", "second", "status"),
    [
        pytest.param(FAST, GOOD, 202, id="a fast answer restarts it on the fast path"),
        pytest.param(PLAIN, GOOD, 202, id="an answer restarts it on plain uvicorn (the reference)"),
        pytest.param(FAST, GET_HEALTHZ, 200, id="an answer from the app restarts it on the fast path"),
    ],
)
def test_an_answer_while_the_idle_timer_runs_restarts_the_keep_alive_timeout(
    kind: str, second: bytes, status: int
) -> None:
    with Collector(kind, options={**SERVED_BY[kind], "timeout_keep_alive": KEEP_ALIVE_S}) as collector, \
            collector.connect() as client:
        client.send(GOOD)
        assert client.response().status == 202
        time.sleep(KEEP_ALIVE_S * 0.6)  # the first answer's idle timer is running
        client.send(second)
        assert client.response().status == status
        idle = closed_after(client)
    assert KEEP_ALIVE_S * 0.8 < idle < KEEP_ALIVE_S + 2.0, idle


@pytest.mark.parametrize("kind", KINDS)
def test_a_request_busy_longer_than_the_keep_alive_timeout_is_answered_and_then_kept_alive(kind: str) -> None:
    with Collector(kind, options={**SERVED_BY[kind], "timeout_keep_alive": KEEP_ALIVE_S}) as collector, \
            collector.connect() as client:
        client.send(GOOD)
        assert client.response().status == 202  # an idle timer runs from this answer
        client.send(http(beacon(session=HELD)))
        assert collector.sink.held.wait(TIMEOUT_S)
        time.sleep(KEEP_ALIVE_S * 1.5)  # busy past the timeout
        collector.sink.release()
        assert client.response().status == 202
        idle = closed_after(client)
    assert KEEP_ALIVE_S * 0.8 < idle < KEEP_ALIVE_S + 2.0, idle


@pytest.mark.parametrize(
    "refused",
    [
        pytest.param(http(beacon(), x_ingest_key=None), id="after a 401 the connection serves the next beacon"),
        pytest.param(http(beacon(), content_type="application/xml"),
                     id="after a 415 the connection serves the next beacon"),
        pytest.param(http(b"{not json"), id="after a 400 the connection serves the next beacon"),
        pytest.param(http(beacon([{"type": "stall", "ts": NOW}])),
                     id="after a 422 the connection serves the next beacon"),
    ],
)
def test_a_fast_path_refusal_keeps_the_connection_open(fast: Collector, refused: bytes) -> None:
    """Plain uvicorn closes after a 401 or 415 (a lingering close); the fast path has read the body."""
    before = fast.served_fast
    with fast.connect() as client:
        client.send(refused)
        refusal = client.response()
        client.send(GOOD)
        assert (refusal.status >= 400, refusal.header("connection"), client.response().status) == (True, None, 202)
    assert fast.served_fast - before == 2


# --- 4. pipelining ------------------------------------------------------------------------------


def answered(response: Response) -> tuple[int, bytes]:
    return response.status, response.body


PIPELINE_ANSWERS = [(202, b'{"status":"accepted","events":3}'), (200, b'{"status":"ok"}'),
                    (202, b'{"status":"accepted","events":1}')]


def test_pipelined_requests_are_answered_in_order(collector: Collector) -> None:
    before = collector.served_fast
    with collector.connect() as client:
        client.send(GOOD + GET_HEALTHZ + http(beacon(ONE_EVENT)))
        assert [answered(client.response()) for _ in range(3)] == PIPELINE_ANSWERS
        client.send(GOOD)  # the connection is still usable
        assert client.response().status == 202
    assert collector.served_fast - before == (3 if collector.kind == FAST else 0)


def test_a_pipelined_answer_does_not_overtake_an_export_in_flight(collector: Collector) -> None:
    with collector.connect() as client:
        client.send(http(beacon(session=HELD)) + GET_HEALTHZ + http(beacon(ONE_EVENT)))
        assert collector.sink.held.wait(TIMEOUT_S)
        assert client.quiet(), "an answer arrived while the first request's export was in flight"
        collector.sink.release()
        assert [answered(client.response()) for _ in range(3)] == PIPELINE_ANSWERS
    assert [b.session_id for b in collector.sink.beacons] == [HELD, "sess-1"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_client_that_reads_late_gets_its_pipelined_answers_in_order(kind: str) -> None:
    """Enough pipelined beacons that uvicorn pauses its writes, then mixed requests: still in order."""
    many = 2000  # answers enough to fill both 4 KiB kernel buffers and uvicorn's 64 KiB many times over
    mixed = [GET_HEALTHZ, http(beacon(ONE_EVENT)), GET_HEALTHZ, http(beacon(ONE_EVENT))]
    with Collector(kind, send_buffer=4096) as collector, collector.connect(receive_buffer=4096) as client, \
            ThreadPoolExecutor(1) as writer:
        # The server stops reading while its answers wait: the writing must not block the reading.
        written = writer.submit(client.send, GOOD * many + b"".join(mixed))
        time.sleep(QUIET_S)  # not reading yet
        answers = [answered(client.response()) for _ in range(many + len(mixed))]
        written.result()
    assert answers[:many] == [PIPELINE_ANSWERS[0]] * many
    assert answers[many:] == [PIPELINE_ANSWERS[1], PIPELINE_ANSWERS[2]] * 2
    assert collector.served_fast == (many + 2 if kind == FAST else 0)


def test_hundreds_of_pipelined_requests_behind_an_export_in_flight_get_one_answer_each(collector: Collector) -> None:
    """Released at once, they are answered one after the other by a sink that acks before it returns.

    More than Python's recursion limit allows if each answer started the next one inside it.
    """
    rounds = 100
    mixed = [(GOOD, 202), (http(b"{}"), 422), (http(b"{not json"), 400)]
    before = collector.served_fast
    with collector.connect() as client:
        client.send(http(beacon(session=HELD)) + b"".join(request for request, _ in mixed) * rounds)
        assert collector.sink.held.wait(TIMEOUT_S)
        collector.sink.release()
        statuses = [client.response().status for _ in range(1 + len(mixed) * rounds)]
        assert client.quiet(), "more answers than requests"
        client.send(GOOD)  # the connection is still usable
        assert client.response().status == 202
    assert statuses == [202] + [status for _, status in mixed] * rounds
    assert collector.served_fast - before == (2 + len(mixed) * rounds if collector.kind == FAST else 0)
    # no_error_logged checks that nothing was logged at ERROR meanwhile


@pytest.mark.parametrize("kind", KINDS)
def test_a_client_that_pipelines_without_reading_is_not_served_ahead_of_its_reading(kind: str) -> None:
    """uvicorn takes no more requests while its answers wait to be written; the fast path neither.

    Served ahead, every answer would wait in the server's memory, however many the client sends.
    """
    many = 10_000
    requests = b"".join(http(beacon(ONE_EVENT if i % 2 else None, seq=i)) for i in range(many))
    with Collector(kind, send_buffer=4096) as collector, collector.connect(receive_buffer=4096) as client, \
            ThreadPoolExecutor(1) as writer:
        written = writer.submit(client.send, requests)  # blocks once the server stops reading
        time.sleep(1.0)  # not reading
        taken = len(collector.sink.beacons)
        answers = [answered(client.response()) for _ in range(many)]
        written.result()
    assert taken < many // 5, f"{taken} of {many} requests exported while the client read none of the answers"
    assert answers == [PIPELINE_ANSWERS[0], PIPELINE_ANSWERS[2]] * (many // 2)
    assert [b.seq for b in collector.sink.beacons] == list(range(many))
    assert collector.served_fast == (many if kind == FAST else 0)


HEAD_OF_GOOD, BODY_OF_GOOD = GOOD.split(b"\r\n\r\n", 1)


@pytest.mark.parametrize(
    ("pieces", "answers"),
    [
        pytest.param([HEAD_OF_GOOD + b"\r\n\r\n", BODY_OF_GOOD], PIPELINE_ANSWERS[:1],
                     id="a beacon whose body comes after its head"),
        pytest.param([GOOD[:40], GOOD[40:-10], GOOD[-10:]], PIPELINE_ANSWERS[:1],
                     id="a beacon written in three pieces"),
        pytest.param([GET_HEALTHZ + HEAD_OF_GOOD + b"\r\n\r\n", BODY_OF_GOOD],
                     [PIPELINE_ANSWERS[1], PIPELINE_ANSWERS[0]],
                     id="a beacon pipelined behind another request, its body coming later"),
    ],
)
def test_a_request_that_arrives_in_pieces_is_answered(
    collector: Collector, pieces: list[bytes], answers: list[tuple[int, bytes]]
) -> None:
    before = collector.served_fast
    with collector.connect() as client:
        for piece in pieces:
            client.send(piece)
            time.sleep(0.02)  # each piece its own read on the server
        assert [answered(client.response()) for _ in answers] == answers
    assert collector.served_fast - before == (1 if collector.kind == FAST else 0)


# --- 5. closing: HTTP/1.0, Connection: close ------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(http(beacon(), version="1.0"), 202, id="an HTTP/1.0 beacon is answered, then closed"),
        pytest.param(http(beacon(), version="1.0", x_ingest_key=None), 401,
                     id="an HTTP/1.0 refusal is answered, then closed"),
        pytest.param(http(beacon(), connection="close"), 202,
                     id="an HTTP/1.1 beacon with Connection close is answered, then closed"),
        pytest.param(http(b"{not json", connection="close"), 400,
                     id="an HTTP/1.1 refusal with Connection close is answered, then closed"),
    ],
)
def test_a_client_that_does_not_keep_alive_is_answered_then_closed(
    collector: Collector, request_bytes: bytes, status: int
) -> None:
    before = collector.served_fast
    with collector.connect() as client:
        client.send(request_bytes)
        response = client.response()
        assert (response.status, response.header("connection")) == (status, "close")
        assert client.closed_by_server()
    assert collector.served_fast - before == (1 if collector.kind == FAST else 0)


# --- 6. graceful shutdown -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_graceful_shutdown_answers_the_export_in_flight_before_the_exporter_stops(kind: str) -> None:
    with Collector(kind) as collector, collector.connect() as client:
        answered_first: list[bool] = []
        # Runs on the server's loop, which it blocks: the answer cannot be written while it looks.
        collector.exporter.before_shutdown = lambda: answered_first.append(
            bool(select.select([client.sock], [], [], QUIET_S)[0]))
        client.send(http(beacon(session=HELD)))
        assert collector.sink.held.wait(TIMEOUT_S)
        port = collector.port
        collector.server.should_exit = True
        wait_until_refused(port)  # the server is shutting down, waiting for the request in flight
        assert collector.thread.is_alive() and client.quiet()
        collector.sink.release()
        response = client.response()
        assert (response.status, response.header("connection")) == (202, "close")
        assert client.closed_by_server()
        collector.thread.join(TIMEOUT_S)
        assert not collector.thread.is_alive()
    assert answered_first == [True], "the exporter shut down before the answer was written"


def wait_until_refused(port: int) -> None:
    """Return once nothing listens on ``port`` any more."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S).close()
        except ConnectionRefusedError:
            return
        time.sleep(0.02)
    raise AssertionError("the server kept listening after should_exit")


# --- 7. a client that goes away -----------------------------------------------------------------


@pytest.mark.parametrize("reset", [pytest.param(False, id="a client that closes"),
                                   pytest.param(True, id="a client that resets")])
def test_a_client_gone_during_its_export_does_not_disturb_the_server(collector: Collector, reset: bool) -> None:
    before = collector.served_fast
    client = collector.connect()
    client.send(http(beacon(session=HELD)))
    assert collector.sink.held.wait(TIMEOUT_S)
    assert collector.exchange(GOOD).status == 202  # another client is served meanwhile
    if reset:  # SO_LINGER 0: the close sends a RST
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.sock.close()
    time.sleep(0.05)  # let the server see the close while the export is still held
    collector.sink.release()
    assert collector.exchange(GOOD).status == 202
    assert collector.thread.is_alive()
    assert collector.served_fast - before == (3 if collector.kind == FAST else 0)
    # no_error_logged checks that nothing was logged at ERROR meanwhile


# --- 8. the access log ---------------------------------------------------------------------------


Servers = dict[str, Collector]  # a fast and a plain server, by kind


@pytest.fixture(scope="module")
def logging_servers() -> Iterator[Servers]:
    """A fast and a plain server with uvicorn's access log on (``streamslo collector`` turns it off)."""
    with Collector(FAST, options={**SERVED_BY[FAST], "access_log": True}) as fast, \
            Collector(PLAIN, options={**SERVED_BY[PLAIN], "access_log": True}) as plain:
        yield {FAST: fast, PLAIN: plain}


@pytest.fixture(scope="module")
def proxied_servers() -> Iterator[Servers]:
    """The same with uvicorn's own defaults: proxy headers on, trusted from 127.0.0.1."""
    with Collector(FAST, options={"http": IngestProtocol, "loop": "uvloop", "access_log": True}) as fast, \
            Collector(PLAIN, options={"http": "httptools", "loop": "uvloop", "access_log": True}) as plain:
        yield {FAST: fast, PLAIN: plain}


@pytest.fixture()
def access_log() -> Iterator[Records]:
    """The records of uvicorn's access logger, at INFO (each server sets it to its own log level)."""
    logger = logging.getLogger("uvicorn.access")
    handler, level = Records(logging.INFO), logger.level
    logger.addHandler(handler)  # before a connection is made: uvicorn looks for a handler per connection
    logger.setLevel(logging.INFO)
    yield handler
    logger.setLevel(level)
    logger.removeHandler(handler)


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(GOOD, id="an accepted beacon is logged as uvicorn logs it"),
        pytest.param(http(beacon(), x_ingest_key=None), id="a refused beacon is logged as uvicorn logs it"),
        pytest.param(http(beacon(), target=f"/v1/beacons?key={KEY}", x_ingest_key=None),
                     id="a beacon keyed by the query string is logged with it"),
        pytest.param(http(beacon(), target=f"/v1/beacons?key={KEY}#frag", x_ingest_key=None),
                     id="a beacon whose target has a fragment is logged without it, as uvicorn does"),
        pytest.param(http(beacon(), version="1.0"), id="an HTTP/1.0 beacon is logged with its version"),
    ],
)
def test_with_the_access_log_on_a_fast_answer_logs_the_line_uvicorn_logs(
    logging_servers: Servers, access_log: Records, request_bytes: bytes
) -> None:
    lines = access_lines(logging_servers, access_log, request_bytes)
    # The first argument is the client's address: its port differs.
    assert [(level, msg, args[1:]) for level, msg, args in lines[FAST]] == \
        [(level, msg, args[1:]) for level, msg, args in lines[PLAIN]]


def test_behind_a_trusted_proxy_a_fast_answer_logs_the_forwarded_client_as_uvicorn_does(
    proxied_servers: Servers, access_log: Records
) -> None:
    lines = access_lines(proxied_servers, access_log, http(beacon(), x_forwarded_for="203.0.113.9"))
    assert [msg % args for _, msg, args in lines[PLAIN]] == ['203.0.113.9:0 - "POST /v1/beacons HTTP/1.1" 202']
    assert lines[FAST] == lines[PLAIN]


AccessLine = tuple[str, str, tuple[object, ...]]  # a record's level name, format and arguments


def access_lines(servers: Servers, access_log: Records, request: bytes) -> dict[str, list[AccessLine]]:
    """``request`` sent to each server: the access-log line each wrote for it (one each)."""
    lines = {}
    for kind, server in servers.items():
        before = server.served_fast
        server.exchange(request)
        assert server.served_fast - before == (1 if kind == FAST else 0)
        lines[kind] = [(r.levelname, str(r.msg), r.args) for r in access_log.records if isinstance(r.args, tuple)]
        assert len(lines[kind]) == len(access_log.records) == 1, [r.getMessage() for r in access_log.records]
        access_log.records.clear()
    return lines


# --- 9. a request that is not HTTP --------------------------------------------------------------


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(b"", id="a malformed request line is a 400"),
        pytest.param(GOOD, id="a malformed request line after a beacon on the same connection is a 400"),
    ],
)
def test_a_malformed_request_is_a_400_and_the_server_keeps_serving(collector: Collector, first: bytes) -> None:
    with collector.connect() as client:
        if first:
            client.send(first)
            assert client.response().status == 202
        client.send(GARBAGE)
        response = client.response()
        assert (response.status, response.header("connection")) == (400, "close")
        assert client.closed_by_server()
    assert collector.exchange(GOOD).status == 202
