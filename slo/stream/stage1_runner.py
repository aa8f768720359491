"""Stage 1 on Kafka: read ``beacons`` in batches, feed :class:`slo.stage1.Stage1`, produce cuts.

Runs in the worker's stage-1 child process (``slo/stream/stage1_process.py``),
or as an app task of the Faust process with ``--stage1-in-process``. Either
way it reads ``beacons`` with its own aiokafka consumer and ``getmany``:
Faust's per-message agent loop caps at about 14k messages/s here, below the
300k events/s target. The consumer group is ``streamslo-stage1``; offsets are committed only
by this module, never automatically.

A *cut* of partition ``p`` covers offsets ``lo < o <= hi``. Each flush:

1. commits ``lo + 1`` with metadata ``cut=<hi>`` (records the boundary before
   anything is produced);
2. produces one bundle per region (``slo-partials``, key = region, acks=all,
   idempotent) and waits for every ack;
3. commits ``hi + 1``.

After a crash anywhere in between, the next owner of ``p`` reads the committed
offset and metadata, seeks back ``dedup_records`` offsets to rebuild the
duplicate memory without counting, re-reads from ``lo + 1`` and cuts again at
``hi``: the same partials, which stage 2 skips by watermark. See
``docs/architecture.md``.

Failures: a cut whose commit or produce fails (broker gone, membership lost
after a session timeout, a rebalance) drops the unflushed state of its
partitions and *resets* them: they are paused and, once the broker answers,
re-read from the committed offset and metadata exactly as on assignment (the
recorded cut reproduces what was lost). A partition that moved to another
worker meanwhile is revoked by the rejoin instead. A record that is not an
acceptable beacon (:func:`slo.beacon.decode_record`, any exception) is
skipped, counted by reason and, with ``Settings.dead_letter``, copied to
``conventions.TOPIC_DEAD_LETTER``.

Tracing (``docs/telemetry.md``): with tracing on, each ``getmany`` batch that
holds a sampled message (a ``traceparent`` from the collector's produce span)
gets one ``process beacons`` span linked to those messages; its context goes
into ``trace_links`` of the first partial of each region bundle of that
partition's next cut, for the stage-2 merge span to link to. With tracing off
the loop is untouched.

Example::

    runner = Stage1Runner(settings, Stage1(spec))
    await runner.run()       # until runner.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import IllegalStateError
from aiokafka.structs import OffsetAndMetadata

from slo import beacon as beacon_wire
from slo import conventions as c
from slo.stage1 import Stage1
from slo.stream.settings import Settings
from slo.stream.topics import (
    STAGE1_GROUP,
    cut_metadata,
    encode_bundle,
    recorded_cut,
    region_bundles,
)
from slo.telemetry import OFF, LinkSet, Tracing, setup_tracing, tracing

SERVICE_NAME = "streamslo-worker"  # OpenTelemetry service.name unless OTEL_SERVICE_NAME is set

log = logging.getLogger(__name__)


RETRY_S = 1.0  # pause between attempts to reset a partition while the broker is away


@dataclass
class _Partition:
    source: str
    start: int  # first offset to count; offsets below it only prime dedup
    cut: int | None  # recorded boundary to re-cut at after a restart
    position: int  # next offset expected


class Stage1Runner(ConsumerRebalanceListener):  # type: ignore[misc]
    """The stage-1 consume/flush loop; see the module docstring."""

    def __init__(self, settings: Settings, stage1: Stage1, *, tracer: Tracing | None = None) -> None:
        """``tracer=None``: :meth:`run` sets up the process's tracing from ``OTEL_*``."""
        self.settings = settings
        self.stage1 = stage1
        self._tracer = tracer
        self.tr: Tracing = tracer if tracer is not None else OFF
        # Per source: the sampled batch spans since its last cut.
        self.links: dict[str, LinkSet] = {}
        self.parts: dict[TopicPartition, _Partition] = {}
        # Assigned partitions waiting for a reset (paused): their cut failed, or
        # reading their committed offset did.
        self.resets: set[TopicPartition] = set()
        self.failed_cuts = 0
        self.malformed = 0
        self.cuts = 0
        self.primed = 0
        self.prime_seconds = 0.0
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    # -- lifecycle -------------------------------------------------------------------

    async def run(self) -> None:
        if self._tracer is None:
            # Idempotent: with --stage1-in-process the Faust process has set it up already.
            setup_tracing(SERVICE_NAME)
            self.tr = tracing()
        s = self.settings
        common: dict[str, Any] = {"bootstrap_servers": s.bootstrap, "client_id": s.client_id}
        self._admin = AIOKafkaAdminClient(**common)
        await self._admin.start()
        await self._new_producer()
        self._consumer = AIOKafkaConsumer(
            group_id=STAGE1_GROUP,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(s.session_timeout_s * 1000),
            heartbeat_interval_ms=int(s.session_timeout_s * 1000 / 6),
            max_partition_fetch_bytes=4 << 20,
            fetch_max_bytes=16 << 20,
            **common,
        )
        self._consumer.subscribe([c.TOPIC_BEACONS], listener=self)
        await self._consumer.start()
        try:
            await self._loop()
        finally:
            await self._close()

    def stop(self) -> None:
        self._stopping.set()

    async def _new_producer(self) -> None:
        """(Re)create the idempotent producer: after a failed produce it may be unusable."""
        s = self.settings
        old, self._producer = self._producer, AIOKafkaProducer(
            acks="all", enable_idempotence=True, linger_ms=2, compression_type=None,
            bootstrap_servers=s.bootstrap, client_id=s.client_id,
        )
        if old is not None:
            with contextlib.suppress(Exception):
                await old.stop()
        await self._producer.start()

    async def _close(self) -> None:
        for client in (self._consumer, self._producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()
        if self._admin is not None:
            with contextlib.suppress(Exception):
                await self._admin.close()

    async def _loop(self) -> None:
        assert self._consumer is not None
        next_flush = time.monotonic() + self.settings.flush_interval_s
        while not self._stopping.is_set():
            if self.resets:
                await self._retry_resets()
            batches = await self._consumer.getmany(timeout_ms=100, max_records=20_000)
            for tp, records in batches.items():
                await self._process(tp, records)
            if time.monotonic() >= next_flush:
                await self.flush()
                next_flush = time.monotonic() + self.settings.flush_interval_s

    # -- input -----------------------------------------------------------------------

    async def _process(self, tp: TopicPartition, records: list[Any]) -> None:
        part = self.parts.get(tp)
        if part is None:
            return  # revoked while the batch was in flight
        tr = self.tr
        if not tr.enabled:  # branch once per batch, never per message
            await self._process_records(tp, part, records)
            return
        # Only the messages that carry headers (a sampled 1 %) are looked at.
        with tr.process_batch([h for rec in records if (h := rec.headers)], c.TOPIC_BEACONS,
                              partition=tp.partition, group=STAGE1_GROUP,
                              count=len(records)) as span:
            if span.is_recording():
                # Before the records: a recorded cut inside this batch flushes
                # them, and that cut's partials must carry the link.
                self.links.setdefault(part.source, LinkSet()).add_span(span)
            await self._process_records(tp, part, records)

    async def _process_records(self, tp: TopicPartition, part: _Partition, records: list[Any]) -> None:
        stage1, source = self.stage1, part.source
        decode = beacon_wire.decode_record
        for rec in records:
            offset = rec.offset
            if offset < part.start:
                self._prime(source, offset, rec.value)
                continue
            try:
                stage1.add_record(decode(rec.value), source, offset)
            except Exception as exc:  # any poison record: skip, never stop
                await self._reject(tp, rec, exc)
            part.position = offset + 1
            if part.cut is not None and offset >= part.cut:
                if offset > part.cut:
                    log.warning("%s: recorded cut %d not found, cut at %d", source, part.cut, offset)
                await self.flush([tp])
                part.cut = None
                if tp not in self.parts:
                    return  # the cut failed and reset the partition: the rest is re-read

    async def _reject(self, tp: TopicPartition, rec: Any, exc: Exception) -> None:
        """Skip a record that is not an acceptable beacon: count it, maybe dead-letter it."""
        reason = exc.reason if isinstance(exc, beacon_wire.Rejected) else c.REASON_INVALID
        self.malformed += 1
        self.stage1.skip(f"{c.TOPIC_BEACONS}/{tp.partition}", rec.offset, reason)
        if self.malformed <= 10 or self.malformed % 1000 == 0:  # bounded log volume
            log.warning("stage1: skipped beacons/%d@%d (%d so far): %s",
                        tp.partition, rec.offset, self.malformed, str(exc)[:200])
        if self.settings.dead_letter and self._producer is not None:
            headers = [("reason", reason.encode()), ("source", f"{tp.topic}/{tp.partition}@{rec.offset}".encode())]
            try:  # fire and forget: a lost copy must not stop stage 1
                await self._producer.send(c.TOPIC_DEAD_LETTER, rec.value, key=rec.key, headers=headers)
            except Exception as err:
                log.warning("stage1: dead-letter copy of beacons/%d@%d failed: %r",
                            tp.partition, rec.offset, err)

    def _prime(self, source: str, offset: int, value: bytes | None) -> None:
        # The read path's acceptance rule exactly: a record it skipped must not
        # enter the dedup memory here, or a replay would judge later beacons differently.
        try:
            beacons = beacon_wire.decode_record(value)
        except Exception:
            return
        for beacon in beacons:
            self.stage1.prime(beacon.session_id, beacon.seq, source, offset)
        self.primed += 1

    # -- output ----------------------------------------------------------------------

    async def flush(self, tps: list[TopicPartition] | None = None) -> None:
        """Cut every (or the given) partition with unflushed input; see the module docstring."""
        async with self._lock:
            await self._flush_locked(tps)

    async def _flush_locked(self, tps: list[TopicPartition] | None) -> None:
        assert self._consumer is not None and self._producer is not None
        cuts: dict[TopicPartition, tuple[int, int]] = {}
        for tp in tps if tps is not None else list(self.parts):
            part = self.parts.get(tp)
            pending = self.stage1.pending(part.source) if part else None
            if part is None or pending is None or pending[1] == pending[0]:
                continue
            if tps is None and part.cut is not None:
                continue  # must re-cut exactly at the recorded boundary first
            cuts[tp] = pending
        if not cuts:
            return
        try:
            await self._cut(cuts)
        except Exception as exc:  # any Kafka failure: replay from the log instead
            self.failed_cuts += 1
            log.warning("stage1: cut of partitions %s failed (%s: %s); resetting them to their "
                        "committed offset", sorted(tp.partition for tp in cuts),
                        type(exc).__name__, exc)
            self._reset(list(cuts))
            try:
                await self._new_producer()
            except Exception as err:  # broker still away: the next failed cut tries again
                log.warning("stage1: could not restart the producer: %r", err)
            return
        self.cuts += len(cuts)

    async def _cut(self, cuts: dict[TopicPartition, tuple[int, int]]) -> None:
        """Steps 1-3 of the module docstring for ``cuts`` ({tp: (lo, hi)})."""
        assert self._consumer is not None and self._producer is not None
        await self._consumer.commit(
            {tp: OffsetAndMetadata(lo + 1, cut_metadata(hi)) for tp, (lo, hi) in cuts.items()}
        )
        futures = []
        now = time.time()
        for tp in cuts:
            source = self.parts[tp].source
            links = self.links.pop(source, None)
            for region, partials in region_bundles(self.stage1.flush(source, now), links.encode() if links else b""):
                futures.append(
                    await self._producer.send(
                        c.TOPIC_PARTIALS, encode_bundle(partials), key=region.encode()
                    )
                )
        if futures:
            await asyncio.gather(*futures)
        await self._consumer.commit({tp: OffsetAndMetadata(hi + 1, "") for tp, (_, hi) in cuts.items()})

    # -- partition resets ----------------------------------------------------------

    def _reset(self, tps: list[TopicPartition]) -> None:
        """Forget the in-memory state of ``tps`` and pause them until :meth:`_assign` succeeds.

        After a failed commit the partition may already belong to another worker:
        only the committed offset and cut metadata are trustworthy, and re-reading
        from them reproduces whatever was dropped here (stage 2 skips replays).
        """
        assert self._consumer is not None
        for tp in tps:
            self._forget(tp)
            self.resets.add(tp)
        with contextlib.suppress(IllegalStateError):  # no longer assigned: the rejoin revokes it
            self._consumer.pause(*tps)

    def _forget(self, tp: TopicPartition) -> None:
        """Drop the unflushed input, duplicate memory and trace links of ``tp``."""
        part = self.parts.pop(tp, None)
        if part is not None:
            self.stage1.drop(part.source)
            self.links.pop(part.source, None)

    async def _retry_resets(self) -> None:
        assert self._consumer is not None
        owned = self._consumer.assignment()
        self.resets &= owned  # revoked meanwhile: the listener already dropped them
        if not self.resets:
            return
        try:
            async with self._lock:
                await self._assign(sorted(self.resets))
        except Exception as exc:  # broker still away: try again later
            log.warning("stage1: reset of partitions %s failed (%s: %s); retrying in %.0f s",
                        sorted(tp.partition for tp in self.resets), type(exc).__name__, exc, RETRY_S)
            await asyncio.sleep(RETRY_S)

    # -- rebalance (ConsumerRebalanceListener) ---------------------------------------------

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Wait for an in-flight flush; unflushed input is replayed by the next owner.
        async with self._lock:
            for tp in revoked:
                self._forget(tp)
                self.resets.discard(tp)
        log.info("stage1: revoked %s", sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if not assigned:
            return
        async with self._lock:
            self.resets.update(assigned)  # until _assign has read their committed offsets
            self._pause(assigned)
            try:
                await self._assign(list(assigned))
            except Exception as exc:  # the loop retries; never fail a rebalance
                log.warning("stage1: could not read committed offsets of %s (%s: %s); will retry",
                            sorted(tp.partition for tp in assigned), type(exc).__name__, exc)

    def _pause(self, tps: list[TopicPartition]) -> None:
        assert self._consumer is not None
        with contextlib.suppress(IllegalStateError):
            self._consumer.pause(*tps)

    async def _assign(self, assigned: list[TopicPartition]) -> None:
        """Start counting ``assigned`` at their committed offset; re-cut at a recorded cut."""
        assert self._consumer is not None and self._admin is not None
        committed = await self._admin.list_consumer_group_offsets(
            STAGE1_GROUP, partitions=list(assigned)
        )
        beginnings = await self._consumer.beginning_offsets(list(assigned))
        for tp in assigned:
            meta = committed.get(tp)
            start = meta.offset if meta is not None and meta.offset >= 0 else beginnings[tp]
            start = max(start, beginnings[tp])
            cut = recorded_cut(meta.metadata) if meta is not None else None
            source = f"{c.TOPIC_BEACONS}/{tp.partition}"
            self.stage1.begin(source, start - 1)
            self.parts[tp] = _Partition(source, start, cut, start)
            self._consumer.seek(tp, max(beginnings[tp], start - self.stage1.dedup_records))
            self.resets.discard(tp)
        with contextlib.suppress(IllegalStateError):
            self._consumer.resume(*assigned)
        log.info(
            "stage1: assigned %s",
            {tp.partition: (p.start, p.cut) for tp, p in self.parts.items() if tp in assigned},
        )

    # -- self-metrics ------------------------------------------------------------------------

    def lag(self) -> dict[int, int]:
        """Records behind the end of each owned partition (highwater - position)."""
        out: dict[int, int] = {}
        if self._consumer is None:
            return out
        for tp, part in self.parts.items():
            with contextlib.suppress(Exception):
                high = self._consumer.highwater(tp)
                if high is not None:
                    out[tp.partition] = max(0, high - max(part.position, part.start))
        return out
