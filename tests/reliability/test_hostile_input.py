"""Hostile input on the topics themselves: poison records and a cardinality attack.

``beacons`` and ``slo-partials`` are topics anyone with write access can fill,
whatever the collector refuses. Real broker, real ``streamslo worker``; the
totals of the honest traffic must stay exact, the worker must never restart,
and every skipped record must be counted by reason (and dead-lettered).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from slo import conventions as c
from slo.beacon import Beacon, Event, encode
from slo.spec import load_spec
from streamslo.testing.stream import Worker, create_topic, metric_sum, produce_beacons, wait_until
from tests.fixtures_kafka import Traffic, progressing, report, settle

PARTITIONS = 4

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
SPEC, _ = load_spec()
ROUNDS = 3  # each poison record is produced this many times, at different moments


def poison(now: float, round_: int) -> list[tuple[bytes, str | None, dict[str, int]]]:
    """(value, skip reason or None, dropped events by reason) for each kind of poison record."""
    def beacon(received: float, *times: float) -> bytes:
        events = [Event(c.EVENT_FIRST_FRAME, t, 900_000.0) for t in times]
        session = f"poison-{round_}-{len(times)}-{times[0]}"  # never a duplicate of another
        return encode(Beacon(session, 1, "eu-west-1", c.KIND_RUM, received, received, events))

    deep = b"[" * 50_000 + b"]" * 50_000
    huge = encode(Beacon("huge", 1, "eu-west-1", c.KIND_RUM, now, now, [Event(c.EVENT_ERROR, now, None, True)] * 20_000))
    return [
        (b'{"session_id":"p","seq":1,"x":' + deep + b"}", c.REASON_INVALID, {}),
        (b'{"events":' + deep + b"}", c.REASON_INVALID, {}),
        (huge, c.REASON_TOO_MANY_EVENTS, {}),
        (b"\x00\xff\xfe" * 2000, c.REASON_MALFORMED, {}),
        (beacon(1e300, 1e300), c.REASON_INVALID, {}),
        (beacon(now, 1e300, now + 86_400), None, {c.REASON_EVENT_IN_FUTURE: 2}),
        (beacon(now, now - 2 * 86_400), None, {c.REASON_EVENT_TOO_OLD: 1}),
    ]


BAD_BUNDLES = [b"\xc1 not msgpack", msgspec.msgpack.encode([1, 2, 3])]


async def produce(bootstrap: str, topic: str, values: list[bytes], key: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4 << 20)
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(topic, v, key=key)
    finally:
        await producer.stop()


async def dead_letters(bootstrap: str, want: int, timeout: float = 30) -> Counter[tuple[str, str]]:
    """(topic of origin, reason) of the first ``want`` dead-letter records."""
    consumer = AIOKafkaConsumer(c.TOPIC_DEAD_LETTER, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    got: Counter[tuple[str, str]] = Counter()
    try:
        async with asyncio.timeout(timeout):
            while sum(got.values()) < want:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for rec in records:
                        h = dict(rec.headers)
                        got[(h["source"].decode().split("/")[0], h["reason"].decode())] += 1
    finally:
        await consumer.stop()
    return got


@pytest.fixture
def broker(kafka_broker_factory):
    broker = kafka_broker_factory()
    create_topic(broker.bootstrap, c.TOPIC_BEACONS, PARTITIONS)
    return broker


def test_poison_records_are_skipped_counted_dead_lettered_and_never_stop_the_worker(broker, tmp_path):
    worker = Worker(broker.bootstrap, tmp_path, "w", "--dead-letter").start()
    try:
        traffic = Traffic(n=3000, tag="honest-").feed_kafka(broker.bootstrap)
        wait_until(lambda: progressing(worker), 60, "worker progress")
        pid = worker.pid
        skipped: Counter[str] = Counter()
        dropped: Counter[str] = Counter()
        for round_ in range(ROUNDS):
            records = poison(time.time(), round_)
            asyncio.run(produce(broker.bootstrap, c.TOPIC_BEACONS, [v for v, _, _ in records], b"poison"))
            asyncio.run(produce(broker.bootstrap, c.TOPIC_PARTIALS, BAD_BUNDLES, b"eu-west-1"))
            skipped.update(reason for _, reason, _ in records if reason)
            for _, _, d in records:
                dropped.update(d)
            time.sleep(2)
        recover = settle(worker, traffic, pid)
        samples = worker.scrape()
        got_skipped = {r: int(metric_sum(samples, c.METRIC_STREAM_SKIPPED, stage="1", reason=r)) for r in skipped}
        got_dropped = {r: int(metric_sum(samples, c.METRIC_STREAM_DROPPED_EVENTS, reason=r)) for r in dropped}
        bundles = int(metric_sum(samples, c.METRIC_STREAM_SKIPPED, stage="2", reason=c.REASON_MALFORMED))
        assert got_skipped == dict(skipped)
        assert got_dropped == dict(dropped)
        assert bundles == ROUNDS * len(BAD_BUNDLES)
        # The poison latencies (900 s) reached no window: the 1m quantiles read honest values.
        p99 = metric_sum(samples, c.METRIC_LATENCY_QUANTILE, region="eu-west-1", sli=c.SLI_TTFF,
                         kind=c.KIND_RUM, quantile="0.99", window="1m")
        assert 0 < p99 <= 0.1 * 1.02, p99
        letters = asyncio.run(dead_letters(broker.bootstrap, sum(skipped.values()) + bundles))
        assert letters == Counter({**{(c.TOPIC_BEACONS, r): n for r, n in skipped.items()},
                                   (c.TOPIC_PARTIALS, c.REASON_MALFORMED): bundles})
        report("poison", records_skipped=sum(skipped.values()), events_dropped=sum(dropped.values()),
               bundles_skipped=bundles, dead_letters=sum(letters.values()), exact_after_s=recover,
               beacons=traffic.n)
    except BaseException:
        print(worker.log_tail(60))
        raise
    finally:
        worker.stop()


class Attack(Traffic):
    """Beacons that each claim a region of their own."""

    def region(self, i: int) -> str:
        return f"mars-{self.tag}{i}"


def test_a_cardinality_attack_of_made_up_regions_yields_bounded_label_values(broker, tmp_path):
    worker = Worker(broker.bootstrap, tmp_path, "w").start()
    try:
        traffic = Traffic(n=2000, tag="honest-").feed_kafka(broker.bootstrap)
        wait_until(lambda: progressing(worker), 60, "worker progress")
        pid = worker.pid
        attack = Attack(n=20_000, tag="a")
        now = time.time()
        asyncio.run(produce_beacons(broker.bootstrap, [(f"a{i}".encode(), encode(attack.beacon(i, now)))
                                                       for i in range(attack.n)]))
        recover = settle(worker, traffic, pid)
        wait_until(lambda: metric_sum(worker.scrape(), c.METRIC_ATTEMPTS, region=c.REGION_OTHER) == 4 * attack.n,
                   60, "the attack counted under 'other'")
        samples = worker.scrape()
        regions = {dict(labels)[c.LABEL_REGION] for _, labels in samples if c.LABEL_REGION in dict(labels)}
        assert regions <= {*SPEC.regions, c.REGION_OTHER}, sorted(regions)[:10]
        report("cardinality", made_up_regions=attack.n, region_label_values=len(regions),
               series=len(samples), exact_after_s=recover, beacons=traffic.n)
    except BaseException:
        print(worker.log_tail(60))
        raise
    finally:
        worker.stop()
