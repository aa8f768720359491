"""``streamslo record``: copy the ``beacons`` topic between two instants into a replay file.

::

    streamslo record --kafka BOOTSTRAP --from 2026-12-01T08:00:00Z --to 2026-12-01T09:00:00Z --out FILE

Every partition is read from the first record at or after ``--from``
(``offsets_for_times``, by record timestamp: the collector's produce time)
until its records pass ``--to`` or its end offset as of the start. Each
record (one beacon, or a group-commit group of several) goes through the same check stage 1 applies
(:func:`slo.beacon.decode_record`); a record that is not an acceptable
beacon is skipped and counted by reason, never copied. The beacons are
written in arrival order (``received_at``) with the file's header
(``streamslo/backtest/data.py``); the whole span is held in memory to sort it.

Example::

    beacons, skipped = asyncio.run(read_span("127.0.0.1:9092", t0, t1))
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from slo import conventions as c
from slo.beacon import Beacon, Rejected, decode_record, encode
from streamslo.backtest.data import Header, ReplayWriter

__all__ = ["main", "parse_time", "read_span", "record"]


def parse_time(text: str) -> float:
    """Unix seconds from ``1764576000`` or an ISO 8601 instant (``2026-12-01T08:00:00Z``)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither unix seconds nor an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r}: give a time zone (Z or +00:00)")
    return moment.timestamp()


async def read_span(bootstrap: str, start: float, end: float, topic: str = c.TOPIC_BEACONS,
                    ) -> tuple[list[tuple[Beacon, bytes]], dict[str, int]]:
    """The acceptable beacons with record timestamps in ``[start, end]`` and the skipped counts by reason."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await _partitions(bootstrap, topic)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.offsets_for_times({tp: int(start * 1000) for tp in partitions})
        todo = {tp for tp in partitions if starts[tp] is not None and starts[tp].offset < ends[tp]}
        for tp in todo:
            consumer.seek(tp, starts[tp].offset)
        return await _drain(consumer, todo, ends, int(end * 1000))
    finally:
        await consumer.stop()


async def _partitions(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic not in set(await admin.list_topics()):
            raise ValueError(f"topic {topic!r} not found at {bootstrap}")
        (meta,) = await admin.describe_topics([topic])
        return sorted(p["partition"] for p in meta["partitions"])
    finally:
        await admin.close()


async def _drain(consumer: AIOKafkaConsumer, todo: set[TopicPartition], ends: dict[TopicPartition, int],
                 end_ms: int) -> tuple[list[tuple[Beacon, bytes]], dict[str, int]]:
    out: list[tuple[Beacon, bytes]] = []
    skipped: dict[str, int] = {}
    while todo:
        batches = await consumer.getmany(*todo, timeout_ms=1000, max_records=5000)
        for tp, records in batches.items():
            for rec in records:
                if rec.timestamp > end_ms or rec.offset >= ends[tp]:
                    todo.discard(tp)
                    break
                try:
                    group = decode_record(rec.value)
                except Rejected as exc:
                    skipped[exc.reason] = skipped.get(exc.reason, 0) + 1
                    continue
                if len(group) == 1:  # the record's own bytes, as the collector wrote them
                    out.append((group[0], rec.value or b""))
                else:  # a group-commit record: one line per beacon in the replay file
                    out.extend((beacon, encode(beacon)) for beacon in group)
            if tp in todo and await consumer.position(tp) >= ends[tp]:
                todo.discard(tp)
    return out, skipped


def record(bootstrap: str, start: float, end: float, path: str) -> tuple[int, dict[str, int]]:
    """Write the span to ``path``; return the beacon count and the skipped records by reason."""
    beacons, skipped = asyncio.run(read_span(bootstrap, start, end))
    beacons.sort(key=lambda pair: pair[0].received_at)
    with ReplayWriter(path, Header(start=start, end=end, source=f"record:{bootstrap}")) as out:
        for _, raw in beacons:
            out.write_encoded(raw)
    return len(beacons), skipped


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="streamslo record", description=__doc__.split("\n")[0])
    p.add_argument("--kafka", required=True, help="bootstrap servers")
    p.add_argument("--from", dest="start", required=True, help="unix seconds or ISO 8601 (with a time zone)")
    p.add_argument("--to", dest="end", required=True, help="unix seconds or ISO 8601 (with a time zone)")
    p.add_argument("--out", required=True, help="replay file to write")
    args = p.parse_args(argv)
    try:
        start, end = parse_time(args.start), parse_time(args.end)
        if end <= start:
            raise ValueError("--to must be after --from")
        n, skipped = record(args.kafka, start, end, args.out)
    except ValueError as exc:
        print(f"streamslo record: {exc}", file=sys.stderr)
        return 2
    extra = ", ".join(f"{k} {v}" for k, v in sorted(skipped.items()))
    print(f"wrote {args.out}: {n} beacons" + (f"; skipped {extra}" if extra else ""))
    return 0
