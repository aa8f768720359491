"""Exporters (OpenTelemetry Collector vocabulary): where accepted beacons go.

Use :class:`KafkaExporter` in the distributed collector and
:class:`InProcessExporter` in the embedded mode (it hands each beacon to the
engine). The ingest endpoint answers 202 only after ``export()`` returned,
i.e. after the downstream acknowledged; :class:`ExporterUnavailable` is the
retryable failure and becomes a 503 with ``Retry-After``.

Exceptions::

    ExporterUnavailable   retryable: broker down, timeout, not started yet

A 503 means "not acknowledged", not "not delivered": a produce that timed out
may still land later, and the client's retry carries the same
``(session_id, seq)``, which stage 1 deduplicates.

>>> seen = []
>>> exp = InProcessExporter(seen.append)
>>> exp.ready()
True
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from slo import beacon as beacon_codec
from slo import conventions as c
from slo.beacon import Beacon

if TYPE_CHECKING:
    from streamslo.telemetry import Tracing

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


class ExporterUnavailable(Exception):
    """Retryable: the downstream cannot take the beacon now (answer 503 + Retry-After)."""


class DeliveryTimeout(Exception):
    """Internal: a Kafka delivery was not acknowledged before its deadline."""


@runtime_checkable
class Exporter(Protocol):
    """What the ingest endpoint needs from an exporter."""

    name: str

    async def start(self) -> None: ...

    async def export(self, beacon: Beacon) -> None: ...

    async def shutdown(self) -> None: ...

    def ready(self) -> bool: ...


class InProcessExporter:
    """Hands each beacon to ``sink`` (sync or async) in the same process.

    The sink's return is the acknowledgement; a sink may raise
    :class:`ExporterUnavailable` to push back (e.g. a full engine queue). An
    async sink that has not finished within ``timeout_s`` counts as
    unavailable.
    """

    name = "in_process"

    def __init__(
        self, sink: Callable[[Beacon], Awaitable[None] | None], *, timeout_s: float = 5.0
    ) -> None:
        self._sink = sink
        self._timeout_s = timeout_s
        self._closed = False

    async def start(self) -> None:
        self._closed = False

    async def export(self, beacon: Beacon) -> None:
        if self._closed:
            raise ExporterUnavailable("in-process exporter is shut down")
        result = self._sink(beacon)
        if result is not None and inspect.isawaitable(result):
            try:
                async with asyncio.timeout(self._timeout_s):
                    await result
            except TimeoutError:
                raise ExporterUnavailable(f"sink did not finish within {self._timeout_s} s") from None

    async def shutdown(self) -> None:
        self._closed = True

    def ready(self) -> bool:
        return not self._closed


def _kafka_error() -> type[Exception]:
    # aiokafka is imported lazily: the embedded mode never loads it.
    from aiokafka.errors import KafkaError

    error: type[Exception] = KafkaError
    return error


def _default_producer_options() -> dict[str, Any]:
    return {
        # aiokafka defaults to acks=1 without idempotence (DESIGN §7).
        "acks": "all",
        "enable_idempotence": True,
        # lz4 (via cramjam) is cheap on the event loop's core; gzip would cost
        # more CPU than it saves on the network.
        "compression_type": "lz4",
        # Many concurrent requests share a batch: a few ms of linger buys
        # large batches (one request per partition leader) at a latency cost
        # well inside the 20 ms p99 target.
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 10_000,
        "retry_backoff_ms": 200,
    }


class KafkaExporter:
    """Produces each beacon to ``topic`` with key = session_id, acks=all, idempotent.

    ``start()`` returns at once and connects in the background (with
    backoff), so a collector started before its broker becomes ready by
    itself; a probe task keeps :meth:`ready` current. While not ready,
    ``export()`` fails fast instead of queueing in the producer.
    ``headers`` (optional) returns per-message Kafka headers, e.g. a W3C
    ``traceparent`` from the current OpenTelemetry context.
    """

    name = "kafka"

    def __init__(
        self,
        bootstrap: str,
        topic: str = c.TOPIC_BEACONS,
        *,
        headers: Callable[[Beacon], Headers | None] | None = None,
        probe_interval_s: float = 1.0,
        send_timeout_s: float = 5.0,
        **producer_options: Any,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._headers = headers
        self._probe_interval_s = probe_interval_s
        self._send_timeout_s = send_timeout_s
        self._options = {**_default_producer_options(), **producer_options}
        self._producer: Any = None
        self._healthy = False
        self._task: asyncio.Task[None] | None = None
        self._deadlines: deque[tuple[float, asyncio.Future[Any]]] = deque()
        self._loop_time = time.monotonic  # replaced by the loop's clock in start()

    def trace_with(self, tr: Tracing) -> None:
        """Put ``tr``'s W3C trace context (``traceparent``) into each message's headers.

        Called by the app's lifespan when tracing is on; an explicit
        ``headers`` hook wins. The context is the current span's: the
        endpoint's ``send <topic>`` producer span on sampled requests, none
        (no header) otherwise.
        """
        if self._headers is None:
            self._headers = lambda _beacon: tr.headers() or None

    async def start(self) -> None:
        if self._task is None:
            self._loop_time = asyncio.get_running_loop().time
            self._task = asyncio.create_task(self._run(), name="kafka-exporter")

    def ready(self) -> bool:
        return self._healthy and self._producer is not None

    async def export(self, beacon: Beacon) -> None:
        producer = self._producer
        if producer is None or not self._healthy:
            raise ExporterUnavailable("Kafka is not reachable")
        headers = self._headers(beacon) if self._headers is not None else None
        try:
            # send() itself is bounded by request_timeout_ms (metadata and
            # buffer waits); the delivery future is not: with idempotence on,
            # aiokafka retries a batch until the broker is back. The watchdog
            # in _run() fails futures past their deadline (aiokafka skips
            # futures already done). One deque append per beacon instead of
            # asyncio.timeout + shield, which cost ~40 % of the export's CPU.
            delivery = await producer.send(
                self.topic,
                value=beacon_codec.encode(beacon),
                key=beacon.session_id.encode(),
                headers=headers,
            )
            self._deadlines.append((self._loop_time() + self._send_timeout_s, delivery))
            await delivery
        except _kafka_error() as exc:
            self._healthy = False
            raise ExporterUnavailable(f"Kafka produce failed: {type(exc).__name__}") from exc
        except DeliveryTimeout as exc:
            self._healthy = False
            raise ExporterUnavailable(str(exc)) from exc

    async def shutdown(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        producer, self._producer = self._producer, None
        self._healthy = False
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _run(self) -> None:
        try:
            await self._connect()
            watchdog = asyncio.create_task(self._watchdog(), name="kafka-exporter-deadlines")
            try:
                while True:
                    await asyncio.sleep(self._probe_interval_s)
                    await self._probe()
            finally:
                watchdog.cancel()
        except Exception:
            # A permanent problem (bad options, missing codec): say so; ready() stays False.
            log.exception("kafka exporter: stopped")
            raise

    async def _connect(self) -> None:
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        delay = 0.2
        while True:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, **self._options)
            try:
                await producer.start()
                await producer.client._wait_on_metadata(self.topic)
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("kafka exporter: cannot connect to %s: %r", self.bootstrap, exc)
                with contextlib.suppress(Exception):
                    await producer.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._producer = producer
            self._healthy = True
            log.info("kafka exporter: connected to %s", self.bootstrap)
            return

    async def _watchdog(self, tick_s: float = 0.1) -> None:
        """Fail deliveries past their deadline (deadlines are appended in order)."""
        pending = self._deadlines
        while True:
            await asyncio.sleep(tick_s)
            now = self._loop_time()
            while pending and (pending[0][1].done() or pending[0][0] <= now):
                _, fut = pending.popleft()
                if not fut.done():
                    fut.set_exception(
                        DeliveryTimeout(f"Kafka did not acknowledge within {self._send_timeout_s} s")
                    )

    async def _probe(self) -> None:
        from aiokafka.errors import KafkaError

        try:
            async with asyncio.timeout(max(self._probe_interval_s, 1.0)):
                await self._producer.client.fetch_all_metadata()
        except (KafkaError, OSError, TimeoutError):
            if self._healthy:
                log.warning("kafka exporter: broker %s unreachable", self.bootstrap)
            self._healthy = False
        else:
            if not self._healthy:
                log.info("kafka exporter: broker %s reachable again", self.bootstrap)
            self._healthy = True
