"""uvicorn's httptools protocol, with ``POST /v1/beacons`` answered without an ASGI task.

Use :class:`IngestProtocol` as uvicorn's HTTP protocol (``streamslo collector``
does, via ``collector.cli.UVICORN_OPTIONS``)::

    uvicorn.run(create_app(config, exporter), http=IngestProtocol, loop="uvloop")

uvicorn stays the server: sockets, workers, lifespan, keep-alive and shutdown
are its own, and so is every route but one. For an ingest request whose whole
body arrives by ``Content-Length`` (identity encoding, no ``Expect:
100-continue``, at most ``max_body_bytes``) the protocol buffers the body and
hands it to :meth:`collector.app.IngestEndpoint.serve_buffered`, which runs the
same checks, metrics and spans as the ASGI path and calls back with the answer
when the export is acknowledged; the answer goes out in one write. Nothing
builds an ASGI scope's messages, a task or a coroutine for it.

Why: answering a bare 202 costs about 30 us of server CPU per request through
uvicorn's ASGI cycle and 9.5 us from a plain protocol on the same parser
(measured on this project's 2-core box, ``docs/benchmarks.md``); the ingest
request is the one request that matters for that.

Everything else (gzip or chunked bodies, 100-continue, a ``Content-Length``
over the limit, whose 413 is a lingering close; ``OPTIONS``; other paths) goes
through uvicorn's ASGI cycle to the app as before. Pipelined requests are
answered in order across both paths: a fast request waits in uvicorn's own
pipeline queue like any other.

This subclasses uvicorn's ``HttpToolsProtocol`` and relies on its per-request
attributes (``url``, ``headers``, ``cycle``, ``pipeline``, ``flow``) and on
``_start_asgi_task``/``on_response_complete``; ``pyproject.toml`` bounds the
uvicorn version, and ``tests/test_fastpath.py`` checks the behaviour against
plain uvicorn.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from collector.app import INGEST_PATH, IngestEndpoint
from collector.asgi import Headers

__all__ = ["IngestProtocol"]

_INGEST = INGEST_PATH.encode()
_IDENTITY = (b"", b"identity")
_UNWRAP_DEPTH = 4  # uvicorn's own wrappers: ASGI2, proxy headers, message logger


class _NoEvent:
    """uvicorn's ``connection_lost`` wakes the current cycle's reader; a fast cycle has none."""

    @staticmethod
    def set() -> None:
        return None


class _FastCycle:
    """One fast-path request, standing in for uvicorn's ``RequestResponseCycle``.

    uvicorn's connection code reads ``response_complete``, ``keep_alive``,
    ``disconnected`` and ``message_event`` of the current cycle; the rest is
    this path's own: the headers and query captured at the end of the head,
    the body chunks, and whether the request may start (not behind a
    pipelined one) and has fully arrived.
    """

    __slots__ = ("body", "complete", "disconnected", "header_map", "headers", "ingest", "keep_alive", "protocol",
                 "query", "replied", "response_complete", "started", "version")
    message_event = _NoEvent

    def __init__(self, protocol: IngestProtocol, ingest: IngestEndpoint, headers: Headers,
                 header_map: dict[bytes, bytes], version: str, query: bytes) -> None:
        self.protocol = protocol
        self.ingest = ingest
        self.headers = headers
        self.header_map = header_map
        self.version = version
        self.query = query
        self.keep_alive = version != "1.0" and protocol.parser.should_keep_alive()
        self.body: list[bytes] = []
        self.started = False
        self.complete = False
        self.replied = False
        self.response_complete = False
        self.disconnected = False

    def serve(self) -> None:
        """Hand the buffered request to the endpoint; :meth:`reply` is its answer."""
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.body = []
        self.ingest.serve_buffered(self.headers, self.header_map, self.query, body, self.reply)

    def reply(self, status: int, body: bytes, headers: Headers) -> None:
        """Write the whole answer at once, then let uvicorn go on to the next request.

        At most once per request: a second call (a bug upstream) is ignored
        rather than sent as an answer to the next request on the connection.
        """
        if self.replied:
            return
        self.replied = True
        protocol = self.protocol
        transport = protocol.transport
        if self.disconnected or transport.is_closing():
            self.response_complete = True
            return
        if protocol.access_log:
            protocol.log_access(self, status)
        extra = b"".join(b"%s: %s\r\n" % pair for pair in headers) if headers else b""
        if body:
            extra += b"content-type: application/json\r\n"
        if not self.keep_alive:
            extra += b"connection: close\r\n"
        # The head as uvicorn writes it (status line, its default headers, then
        # collector.asgi.response_headers' order), in one write with the body.
        transport.write(b"%scontent-length: %d\r\n%s\r\n%s" % (protocol.status_head(status), len(body), extra, body))
        if not self.keep_alive:
            self.response_complete = True
            transport.close()
            protocol.on_response_complete()  # counts the request; nothing follows on a closing connection
        elif protocol.flow.write_paused:
            # A client not reading its answers: this answer stays incomplete until
            # they drain, so the requests behind it queue, as behind uvicorn's own.
            task = protocol.loop.create_task(self._complete_after_drain())
            protocol.tasks.add(task)  # as uvicorn's own tasks: a graceful shutdown waits for it
            task.add_done_callback(protocol.tasks.discard)
        else:
            self.response_complete = True
            protocol.on_response_complete()

    async def _complete_after_drain(self) -> None:
        protocol = self.protocol
        await protocol.flow.drain()
        self.response_complete = True
        if not self.keep_alive:  # a shutdown began meanwhile
            protocol.transport.close()
        protocol.on_response_complete()


def ingest_endpoint(app: Any) -> tuple[IngestEndpoint | None, ProxyHeadersMiddleware | None]:
    """The collector's ingest endpoint under uvicorn's own wrappers of ``app``, if it has one,
    and uvicorn's proxy-headers middleware among those wrappers, if it is on.

    Only uvicorn's wrappers are looked through: an app wrapped in someone
    else's middleware keeps every request going through that middleware.
    """
    proxy = None
    for _ in range(_UNWRAP_DEPTH):
        if isinstance(app, ProxyHeadersMiddleware):
            proxy = app
        ingest = getattr(app, "ingest", None)
        if isinstance(ingest, IngestEndpoint):
            return (ingest if ingest.fast_path else None), proxy
        if not type(app).__module__.startswith("uvicorn."):
            return None, None
        app = getattr(app, "app", None)
    return None, None


class IngestProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools) with the ingest fast path; see the module doc."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        found, proxy = ingest_endpoint(self.app)
        # The proxy-headers middleware only changes the client that the access log names.
        self._proxy = proxy if self.access_log else None
        # uvicorn's concurrency limit and a root path are its ASGI cycle's business.
        if config.limit_concurrency is not None or config.root_path:
            found = None
        self.ingest = found
        self._limit = found.config.max_body_bytes if found is not None else 0
        self._parsing_fast = False
        self._idle_since: float | None = None  # loop time of the last answer; None while busy
        self._heads: dict[int, bytes] = {}
        self._heads_for: list[tuple[bytes, bytes]] | None = None

    def status_head(self, status: int) -> bytes:
        """The status line and uvicorn's default headers, encoded once per change of those.

        uvicorn swaps ``server_state.default_headers`` for a new list once a second
        (its ``date`` header), so a list seen before means an unchanged head.
        """
        default_headers = self.server_state.default_headers
        if default_headers is not self._heads_for:
            self._heads.clear()
            self._heads_for = default_headers
        head = self._heads.get(status)
        if head is None:
            head = self._heads[status] = STATUS_LINE[status] + b"".join(
                b"%s: %s\r\n" % pair for pair in default_headers)
        return head

    def log_access(self, cycle: _FastCycle, status: int) -> None:
        """uvicorn's access-log line, for an answer its ASGI cycle did not write.

        The client is the socket's peer or, behind a proxy uvicorn trusts, the
        one its ``X-Forwarded-For`` names, as uvicorn's proxy-headers middleware
        would have set it (its own trust check and parser).
        """
        client = self.client
        proxy = self._proxy
        if proxy is not None and client and client[0] in proxy.trusted_hosts:
            forwarded = [value for name, value in cycle.headers if name == b"x-forwarded-for"]
            if forwarded:
                host, port = proxy.trusted_hosts.get_trusted_client_address(b", ".join(forwarded).decode("latin1"))
                if host:
                    client = (host, port)
        target = INGEST_PATH + "?" + cycle.query.decode("latin-1") if cycle.query else INGEST_PATH
        self.access_logger.info('%s - "%s %s HTTP/%s" %d', f"{client[0]}:{client[1]}" if client else "",
                                "POST", target, cycle.version, status)

    # Keep-alive: uvicorn arms a timer after every answer and cancels it on the
    # next bytes. Here a timer is armed once per idle spell and, when it fires,
    # re-arms for the time left if the connection answered since: the same
    # timeout_keep_alive, without a timer per request.

    def _unset_keepalive_if_required(self) -> None:
        self._idle_since = None

    def on_response_complete(self) -> None:
        """uvicorn's (count, resume reading, start the next pipelined request), with the lazy keep-alive timer."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._idle_since = None
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self._keep_alive_due)

    def _keep_alive_due(self) -> None:
        self.timeout_keep_alive_task = None
        if self._idle_since is None:  # busy: its answer arms the timer again
            return
        left = self._idle_since + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self.timeout_keep_alive_task = self.loop.call_later(left, self._keep_alive_due)
        else:
            self.timeout_keep_alive_handler()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None

    def on_headers_complete(self) -> None:
        cycle = self._fast_cycle() if self.ingest is not None else None
        if cycle is None:
            self._parsing_fast = False
            self._asgi_scope()
            super().on_headers_complete()
            return
        self._parsing_fast = True
        previous = self.cycle
        self.cycle = cycle  # type: ignore[assignment]
        if previous is None or previous.response_complete:
            cycle.started = True
        else:  # pipelined behind an unanswered request: queue it as uvicorn does
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, self.app))  # type: ignore[arg-type]

    def on_message_begin(self) -> None:
        """uvicorn's, minus the ASGI scope: :meth:`on_headers_complete` builds it if it is needed."""
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def _asgi_scope(self) -> None:
        """The scope uvicorn's own ``on_message_begin`` builds, around this request's head."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.headers, self.expect_100_continue = url, headers, expect
        self.scope["headers"] = headers

    def _fast_cycle(self) -> _FastCycle | None:
        """A cycle for this request if it may take the fast path, else None."""
        ingest = self.ingest
        assert ingest is not None
        path, _, query = self.url.partition(b"?")
        if (path != _INGEST or self.expect_100_continue or self.parser.get_method() != b"POST"
                or self.parser.should_upgrade()):
            return None
        query = query.partition(b"#")[0]  # a fragment is not part of the query (uvicorn drops it too)
        headers = dict(self.headers)  # the last of repeated names, as the ASGI path reads them
        length = headers.get(b"content-length")
        if (length is None or not length.isdigit() or int(length) > self._limit
                or b"transfer-encoding" in headers
                or headers.get(b"content-encoding", b"").strip().lower() not in _IDENTITY):
            return None
        return _FastCycle(self, ingest, self.headers, headers, self.parser.get_http_version(), query)

    def on_body(self, body: bytes) -> None:
        if self._parsing_fast:
            cycle: _FastCycle = self.cycle  # type: ignore[assignment]
            cycle.body.append(body)
        else:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._parsing_fast:
            super().on_message_complete()
            return
        cycle: _FastCycle = self.cycle  # type: ignore[assignment]
        cycle.complete = True
        if cycle.started:
            cycle.serve()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        """uvicorn starts the next pipelined request here: a fast one is served, not tasked."""
        if isinstance(cycle, _FastCycle):
            cycle.started = True
            if cycle.complete:
                # Not served right here: this runs inside the previous answer, and a
                # synchronous sink would answer the next one inside it again, one
                # stack frame deeper per pipelined request.
                self.loop.call_soon(cycle.serve)
            return
        super()._start_asgi_task(cycle, app)
