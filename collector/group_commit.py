"""Group commit: beacons for one Kafka partition that arrive together go out as one record.

Use :class:`GroupCommit` inside an exporter that answers only after the
broker's ack. Each :meth:`GroupCommit.add` takes one beacon and a ``done``
callback; beacons added for the same partition in the same event-loop
iteration (or within ``linger_s`` when it is positive; at most
``max_beacons`` / ``max_bytes``) are handed to ``produce`` as one record, and
its delivery report calls every ``done`` of the group at once. A request still
gets its 202 only after the record holding its beacon is acknowledged, but the
per-message work (a produce call, a delivery report) is paid once per group
instead of once per request, and nothing per beacon waits on a future.

The partition is the one the Java client's default partitioner (and
librdkafka's ``murmur2_random``) gives the beacon's ``session_id``, so every
beacon of a session, grouped or not, lands on one partition and stage 1's
dedup stays local to it.

Record value (``docs/collector.md``, "Kafka records"): a group of one is the
beacon's own value (:func:`slo.beacon.encode_record`), the same form as a
record without group commit; a group of several is an array of those
(:func:`slo.beacon.group_record`). Stage 1 reads both
(:func:`slo.beacon.decode_record`).

>>> murmur2(b"21") - 2**32  # Kafka's Utils.murmur2("21".getBytes()) is -973932308
-973932308
>>> partition_for(b"21", 16)
12
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable

from slo.beacon import group_record

__all__ = ["Done", "GroupCommit", "future_done", "murmur2", "notify", "partition_for"]

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]
Done = Callable[[BaseException | None], None]
"""``done(None)`` once the beacon's record is acknowledged, ``done(error)`` if it failed; exactly once."""
# produce(partition, value, key, headers, waiters): hand one record to the producer;
# it must call every waiter exactly once when the record is acknowledged or has failed.
Produce = Callable[[int, bytes, bytes, Headers | None, list[Done]], None]

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS: dict[int, Callable[[bytes], tuple[int, ...]]] = {}  # key length in words -> its unpacker


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``), unsigned."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    whole = length >> 2
    unpack = _WORDS.get(whole)
    if unpack is None:
        unpack = _WORDS[whole] = struct.Struct(f"<{whole}I").unpack_from
    for k in unpack(data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) ^ (k * _M)) & _MASK  # masking once: (a & m) ^ (b & m) == (a ^ b) & m
    tail = data[whole * 4:]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition the default partitioner picks for ``key``: ``toPositive(murmur2) % n``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def notify(waiters: list[Done], error: BaseException | None) -> None:
    """Call every ``done`` of a record; one that raises is logged and the others still hear.

    A ``done`` runs inside the producer's delivery report (``poll()``): an
    exception escaping it would stop the poll loop, and with it every later
    acknowledgement.
    """
    for done in waiters:
        try:
            done(error)
        except Exception:
            log.exception("group commit: a done callback raised")


def future_done(fut: asyncio.Future[None]) -> Done:
    """A ``done`` callback that resolves ``fut`` (left alone if its awaiter was cancelled)."""

    def done(error: BaseException | None) -> None:
        if fut.done():
            return
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)

    return done


class _Group:
    """One open record: its encoded beacons, their ``done`` callbacks, the trace headers."""

    __slots__ = ("headers", "key", "size", "timer", "values", "waiters")

    def __init__(self, key: bytes) -> None:
        self.values: list[bytes] = []
        self.waiters: list[Done] = []
        self.headers: Headers = []
        self.key = key
        self.size = 0
        self.timer: asyncio.Handle | None = None  # call_later or call_soon


class GroupCommit:
    """Open groups per partition, flushed on linger, count or size.

    ``linger_s = 0`` (the default) flushes at the end of the current
    event-loop iteration: only beacons whose requests were handled in the same
    iteration share a record, and no request waits for a timer. Measured
    (``bench/bench_ingest.py --paired kafka_linger1ms,kafka``) it costs 5 % less CPU
    per beacon than a 1 ms linger, whose timers cost more than the larger
    groups save.
    """

    def __init__(
        self,
        produce: Produce,
        *,
        linger_s: float = 0.0,
        max_beacons: int = 16,
        max_bytes: int = 256 * 1024,
    ) -> None:
        if max_beacons < 1 or max_bytes < 1 or linger_s < 0:
            raise ValueError("max_beacons and max_bytes must be >= 1 and linger_s >= 0")
        self._produce = produce
        self.linger_s = linger_s
        self.max_beacons = max_beacons
        self.max_bytes = max_bytes
        self._open: dict[int, _Group] = {}

    def add(self, partition: int, value: bytes, key: bytes, done: Done, headers: Headers | None = None) -> None:
        """Queue one encoded beacon for ``partition``; ``done`` hears of its record's ack.

        Never raises: when ``produce`` fails (e.g. its queue is full), every
        ``done`` of that group is called with the error (:func:`notify`).
        """
        group = self._open.get(partition)
        if group is not None and group.size + len(value) > self.max_bytes:
            self.flush(partition)
            group = None
        if group is None:
            group = self._open[partition] = _Group(key=key)
            loop = asyncio.get_running_loop()
            if self.linger_s > 0:
                group.timer = loop.call_later(self.linger_s, self.flush, partition)
            else:
                group.timer = loop.call_soon(self.flush, partition)
        group.values.append(value)
        group.waiters.append(done)
        group.size += len(value)
        if headers:
            group.headers.extend(headers)
        if len(group.values) >= self.max_beacons or group.size >= self.max_bytes:
            self.flush(partition)

    def flush(self, partition: int) -> None:
        """Hand ``partition``'s open group to ``produce`` now (no-op when none is open)."""
        group = self._open.pop(partition, None)
        if group is None:
            return
        if group.timer is not None:
            group.timer.cancel()
        try:
            self._produce(partition, group_record(group.values), group.key, group.headers or None, group.waiters)
        except Exception as exc:
            notify(group.waiters, exc)

    def flush_all(self) -> None:
        """Flush every open group (on shutdown)."""
        for partition in list(self._open):
            self.flush(partition)
