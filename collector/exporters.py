"""Exporters (OpenTelemetry Collector vocabulary): where accepted beacons go.

Use :class:`KafkaExporter` (librdkafka via confluent-kafka) in the
distributed collector and :class:`InProcessExporter` in the embedded mode (it
hands each beacon to the engine). The ingest endpoint answers 202 only after
``export()`` returned, i.e. after the downstream acknowledged;
:class:`ExporterUnavailable` is the retryable failure and becomes a 503 with
``Retry-After``.

Exceptions::

    ExporterUnavailable   retryable: broker down, timeout, local queue full, not started yet

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
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Protocol, runtime_checkable

from collector.group_commit import Done, GroupCommit, future_done, notify, partition_for
from slo import beacon as beacon_codec
from slo import conventions as c
from slo.beacon import Beacon

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


class ExporterUnavailable(Exception):
    """Retryable: the downstream cannot take the beacon now (answer 503 + Retry-After)."""


@runtime_checkable
class Exporter(Protocol):
    """What the ingest endpoint needs from an exporter."""

    name: str

    async def start(self) -> None: ...

    async def export(self, beacon: Beacon, headers: Headers | None = None) -> None:
        """Deliver ``beacon``; ``headers`` (e.g. a W3C ``traceparent``) go along where the
        downstream has a place for them (Kafka message headers), else are ignored."""
        ...

    async def shutdown(self) -> None: ...

    def ready(self) -> bool: ...


@runtime_checkable
class SubmittingExporter(Exporter, Protocol):
    """An exporter that can also start a delivery without being awaited (the ingest fast path).

    ``submit()`` raises :class:`ExporterUnavailable` at once when it cannot
    take the beacon; else it calls ``done`` exactly once, later or before it
    returns: ``done(None)`` when the downstream acknowledged,
    ``done(ExporterUnavailable(...))`` when it will not, and any other
    exception for a bug (a sink's own error, a cancelled sink).
    """

    def submit(self, beacon: Beacon, done: Done, headers: Headers | None = None) -> None: ...


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
        self._tasks: set[asyncio.Future[None]] = set()  # submit()'s async sinks still running

    async def start(self) -> None:
        self._closed = False

    async def export(self, beacon: Beacon, headers: Headers | None = None) -> None:
        result = self._hand_over(beacon)
        if result is not None and inspect.isawaitable(result):
            await self._bounded(result)

    def submit(self, beacon: Beacon, done: Done, headers: Headers | None = None) -> None:
        result = self._hand_over(beacon)
        if result is None or not inspect.isawaitable(result):
            done(None)
            return
        task = asyncio.ensure_future(self._bounded(result))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(partial(_task_done, done))

    def _hand_over(self, beacon: Beacon) -> Awaitable[None] | None:
        if self._closed:
            raise ExporterUnavailable("in-process exporter is shut down")
        return self._sink(beacon)

    async def _bounded(self, result: Awaitable[None]) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                await result
        except TimeoutError:
            raise ExporterUnavailable(f"sink did not finish within {self._timeout_s} s") from None

    async def shutdown(self) -> None:
        self._closed = True

    def ready(self) -> bool:
        return not self._closed


def _task_done(done: Done, task: asyncio.Future[None]) -> None:
    done(asyncio.CancelledError() if task.cancelled() else task.exception())


def _librdkafka_options(bootstrap: str, send_timeout_s: float) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        # acks=all + idempotence: no loss, no duplicates from the producer's retries.
        "acks": "all",
        "enable.idempotence": True,
        # lz4 is cheap on CPU; gzip would cost more than it saves on the network.
        "compression.type": "lz4",
        # Beacons are grouped into records above the client (GroupCommit), so
        # librdkafka's own batching only needs to gather records of different
        # partitions: a short linger, for latency.
        "linger.ms": 1,
        # librdkafka's own delivery deadline: past it the message gets a
        # delivery report with _MSG_TIMED_OUT.
        "message.timeout.ms": max(1, int(send_timeout_s * 1000)),
        # A bounded local queue: when full, produce() raises BufferError -> 503.
        "queue.buffering.max.messages": 100_000,
        # Java's (and aiokafka's) DefaultPartitioner: a session's key lands on
        # the same partition whichever producer wrote it (librdkafka's default
        # is consistent_random, a different hash).
        "partitioner": "murmur2_random",
        # TCP_NODELAY, as the Java client and aiokafka set it: latency over packet count.
        "socket.nagle.disable": True,
    }


class KafkaExporter:
    """Produces beacons to ``topic`` by session_id's partition, acks=all, idempotent (librdkafka).

    Group commit (``collector/group_commit.py``): beacons for one partition
    that arrive in one event-loop iteration, or within ``group_linger_s`` when
    it is positive (at most ``group_max_beacons``,
    ``group_max_bytes``) share one record, and its delivery report answers all
    their requests; ``group_max_beacons=1`` writes one record per beacon.

    ``start()`` returns at once: librdkafka connects in the background and a
    probe task (metadata for ``topic`` every ``probe_interval_s``) keeps
    :meth:`ready` current; while not ready, ``export()`` fails fast instead
    of queueing. A delivery error (deadline ``send_timeout_s``, broker
    rejection) or "all brokers down" marks it not ready until the next good
    probe. A fatal producer error (idempotence broken, e.g. an out-of-order
    sequence) leaves the producer unusable: the probe task then purges it
    (its pending callers get 503) and replaces it with a fresh one before
    probing again. ``export(beacon, headers)`` puts ``headers`` (the ingest
    endpoint passes a W3C ``traceparent`` on sampled requests only) on the
    message. ``producer_options`` are librdkafka's dotted names
    (``{"queue.buffering.max.messages": 10}``) and override the defaults.

    Delivery reports are served on the event loop: while deliveries are
    pending, a task calls ``poll(0)`` every ``poll_interval_s``, so the
    callbacks answer their requests on the loop's own thread (no locks, no
    cross-thread wake-ups). A poll thread handing results over with
    ``call_soon_threadsafe`` measured no better (``bench/bench_exporter.py``).
    """

    name = "kafka"
    poll_interval_s = 0.001  # latency added to a delivery: at most this (linger is 1 ms)

    def __init__(
        self,
        bootstrap: str,
        topic: str = c.TOPIC_BEACONS,
        *,
        probe_interval_s: float = 1.0,
        send_timeout_s: float = 5.0,
        group_linger_s: float = 0.0,
        group_max_beacons: int = 16,
        group_max_bytes: int = 256 * 1024,
        **producer_options: Any,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._probe_interval_s = probe_interval_s
        self._send_timeout_s = send_timeout_s
        self._options = {**_librdkafka_options(bootstrap, send_timeout_s), **producer_options}
        self._producer: Any = None
        self._healthy = False
        self._fatal: Any = None  # the KafkaError that made the producer unusable
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # The waiters of each record produced whose delivery report is not served yet, by id().
        self._in_flight: dict[int, list[Done]] = {}
        self._wake = asyncio.Event()
        self._partitions = 0  # the topic's partition count, from the last good probe
        self._groups = GroupCommit(self._produce_group, linger_s=group_linger_s,
                                   max_beacons=group_max_beacons, max_bytes=group_max_bytes)

    async def start(self) -> None:
        if self._tasks:
            return
        self._loop = asyncio.get_running_loop()
        self._producer = self._new_producer()
        self._tasks = [asyncio.create_task(self._poll_loop(), name="kafka-exporter-poll"),
                       asyncio.create_task(self._probe_loop(), name="kafka-exporter-probe")]

    def ready(self) -> bool:
        return self._healthy and self._producer is not None and self._partitions > 0

    async def export(self, beacon: Beacon, headers: Headers | None = None) -> None:
        fut = asyncio.get_running_loop().create_future()
        self.submit(beacon, future_done(fut), headers)
        await fut

    def submit(self, beacon: Beacon, done: Done, headers: Headers | None = None) -> None:
        """Queue ``beacon`` in its partition's group; ``done`` hears of the record's ack."""
        if not self.ready():
            raise ExporterUnavailable("Kafka is not reachable")
        key = beacon.session_id.encode()
        self._groups.add(partition_for(key, self._partitions), beacon_codec.encode_record(beacon), key, done, headers)

    def _produce_group(self, partition: int, value: bytes, key: bytes, headers: Headers | None,
                       waiters: list[Done]) -> None:
        """One record for a group of beacons; its delivery report resolves ``waiters``."""
        producer = self._producer
        if producer is None:
            raise ExporterUnavailable("Kafka exporter is shut down")
        try:
            producer.produce(self.topic, value, key, partition=partition,
                             on_delivery=partial(self._on_delivery, waiters), headers=headers)
        except BufferError:
            raise ExporterUnavailable("Kafka producer queue is full") from None
        except Exception as exc:  # KafkaException: a message over message.max.bytes, or _FATAL
            if _is_fatal_produce_error(exc):
                self._healthy = False  # the next poll() raises the fatal error itself
            raise ExporterUnavailable(f"Kafka produce failed: {exc}") from exc
        self._in_flight[id(waiters)] = waiters
        self._wake.set()

    async def shutdown(self) -> None:
        self._groups.flush_all()  # open groups go to the producer and get the bounded flush below
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        producer, self._producer = self._producer, None
        self._healthy = False
        if producer is None:
            return
        # A bounded flush, polled here: delivery callbacks must run on the
        # loop's thread. What is left is purged; its callers get an error (a
        # delivery report with _PURGE_*), not a hang.
        deadline = time.monotonic() + self._send_timeout_s
        while self._in_flight and time.monotonic() < deadline:
            self._poll(producer)
            await asyncio.sleep(0.01)
        await self._purge(producer)

    def _new_producer(self) -> Any:
        from confluent_kafka import Producer  # lazily: the embedded mode never loads it

        return Producer({**self._options, "error_cb": self._on_error, "logger": log})

    def _poll(self, producer: Any) -> None:
        """``poll(0)`` on the loop's thread, remembering a fatal error.

        confluent-kafka raises a fatal error from ``poll()`` (once) instead
        of passing it to ``error_cb``.
        """
        try:
            producer.poll(0)
        except Exception as exc:
            err: Any = exc.args[0] if exc.args else None
            if not (hasattr(err, "fatal") and err.fatal()):
                raise
            if self._fatal is None:
                log.warning("kafka exporter: fatal producer error %s (%s); replacing the producer",
                            err.name(), err.str())
            self._fatal = err
            self._healthy = False

    async def _purge(self, producer: Any) -> None:
        """Drop everything ``producer`` still holds; each pending caller gets its error.

        A delivery report the purge did not serve by the deadline will never
        be polled: its record's waiters get 503 here instead of hanging.
        """
        producer.purge()
        deadline = time.monotonic() + self._send_timeout_s
        self._poll(producer)
        while self._in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            self._poll(producer)
        in_flight, self._in_flight = self._in_flight, {}
        for waiters in in_flight.values():
            notify(waiters, ExporterUnavailable("Kafka producer replaced; delivery unknown"))

    async def _replace_producer(self) -> None:
        """After a fatal error: fail the old producer's pending deliveries, then start afresh.

        ``export()`` refuses while this runs (not healthy), so every pending
        delivery belongs to the old producer.
        """
        old = self._producer
        self._groups.flush_all()  # their waiters get the purge's error, not a hang
        await self._purge(old)
        self._producer = self._new_producer()
        self._fatal = None

    def _on_delivery(self, waiters: list[Done], err: Any, _msg: Any) -> None:
        """Delivery report of one record, run by ``poll()`` on the event loop's thread."""
        if self._in_flight.pop(id(waiters), None) is None:
            return  # a purge already failed its waiters
        if err is not None:
            self._healthy = False
        notify(waiters, None if err is None else ExporterUnavailable(f"Kafka delivery failed: {err.name()}"))

    def _on_error(self, err: Any) -> None:
        from confluent_kafka import KafkaError

        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            if self._healthy:
                log.warning("kafka exporter: %s", err)
            self._healthy = False

    async def _poll_loop(self) -> None:
        while True:
            if self._in_flight:
                self._poll(self._producer)
                await asyncio.sleep(self.poll_interval_s)
            else:
                self._wake.clear()
                await self._wake.wait()

    async def _probe_loop(self) -> None:
        while True:
            self._poll(self._producer)  # error_cb, logs and fatal errors, also while idle
            if self._fatal is not None:
                await self._replace_producer()
            await self._probe()
            await asyncio.sleep(self._probe_interval_s)

    async def _probe(self) -> None:
        """Ready iff the broker answers metadata for the topic (it may auto-create it)."""
        timeout = max(self._probe_interval_s, 1.0)
        try:
            md = await asyncio.to_thread(self._producer.list_topics, self.topic, timeout)
            meta = md.topics.get(self.topic)
            ok = meta is not None and meta.error is None and bool(meta.partitions)
            if ok:
                self._partitions = len(meta.partitions)
        except Exception as exc:  # KafkaException: timeout, transport
            log.debug("kafka exporter: metadata probe failed: %s", exc)
            ok = False
        if ok and not self._healthy:
            log.info("kafka exporter: %s ready for topic %s", self.bootstrap, self.topic)
        elif not ok and self._healthy:
            log.warning("kafka exporter: broker %s unreachable", self.bootstrap)
        self._healthy = ok and self._fatal is None


def _is_fatal_produce_error(exc: Exception) -> bool:
    """``produce()`` on a producer that had a fatal error raises KafkaException(_FATAL)."""
    from confluent_kafka import KafkaError

    err = exc.args[0] if exc.args else None
    return isinstance(err, KafkaError) and err.code() == KafkaError._FATAL
