"""The collector against the real Kafka broker: exactly once on the topic, 503 while it is down."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from collector.app import create_app
from collector.config import CollectorConfig
from collector.exporters import ExporterUnavailable, KafkaExporter
from collector.group_commit import future_done
from slo import beacon as codec
from slo import conventions as c

pytestmark = pytest.mark.kafka


def beacon_body(session: str, seq: int) -> dict[str, Any]:
    now = time.time()
    return {"v": 1, "session_id": session, "seq": seq, "sent_at": now, "region": "eu-west-1",
            "events": [{"type": "first_frame", "ts": now - 1, "value_ms": 100.0 + seq},
                       {"type": "error", "ts": now, "fatal": True}]}


def beacons_of(records: list[Any]) -> list[codec.Beacon]:
    """Every beacon in ``records``: one per record, or a group-commit group's several."""
    return [b for rec in records for b in codec.decode_record(rec.value)]


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record on ``topic`` (all partitions) from the beginning up to the end offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or
                                                          await _partitions(consumer, topic))]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        records: list[Any] = []
        while [tp for tp in parts if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(*parts, timeout_ms=1000)
            for recs in batch.values():
                records.extend(recs)
        return records
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client._wait_on_metadata(topic)
    return consumer.partitions_for_topic(topic) or set()


class Running:
    """An app with a started KafkaExporter and an in-process HTTP client."""

    def __init__(self, bootstrap: str, topic: str, **producer_options: Any) -> None:
        self.registry = CollectorRegistry()
        self.exporter = KafkaExporter(bootstrap, topic, probe_interval_s=0.5, send_timeout_s=3.0,
                                      **producer_options)
        cfg = CollectorConfig(regions=("eu-west-1",), require_key=False)
        self.app = create_app(cfg, self.exporter, self.registry)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                        base_url="http://collector")

    async def __aenter__(self) -> Running:
        await self.exporter.start()
        await wait_until(self.exporter.ready, 30, "the exporter to connect")
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.aclose()
        await self.exporter.shutdown()

    async def post(self, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post("/v1/beacons", json=body)


async def test_accepted_beacons_are_on_the_topic_exactly_once_keyed_by_session(kafka_broker: Any) -> None:
    topic = f"beacons-test-{uuid.uuid4().hex[:8]}"
    sent = [(f"session-{i % 7}", i) for i in range(60)]
    async with Running(kafka_broker.bootstrap, topic) as run:
        responses = await asyncio.gather(*(run.post(beacon_body(s, q)) for s, q in sent))
        assert [r.status_code for r in responses] == [202] * len(sent)
        assert run.registry.get_sample_value(
            c.METRIC_COLLECTOR_BEACONS, {c.LABEL_OUTCOME: c.OUTCOME_ACCEPTED}) == len(sent)
    records = await read_topic(kafka_broker.bootstrap, topic)
    seen: Counter[tuple[str, int]] = Counter()
    for rec in records:
        group = codec.decode_record(rec.value)
        assert rec.key == group[0].session_id.encode()
        for b in group:
            assert len(b.events) == 2 and b.events[0].value_ms == 100.0 + b.seq
            seen[(b.session_id, b.seq)] += 1
    assert seen == Counter(sent)
    # 60 concurrent requests: group commit put several beacons in one record.
    assert len(records) < len(sent)


@pytest.mark.slow
async def test_broker_down_gives_503_then_recovers_by_itself(kafka_broker_factory: Any) -> None:
    broker = kafka_broker_factory()
    topic = f"beacons-test-{uuid.uuid4().hex[:8]}"
    acked: list[tuple[str, int]] = []
    seq = 0

    async def post_one(run: Running) -> int:
        nonlocal seq
        seq += 1
        r = await run.post(beacon_body("s-restart", seq))
        if r.status_code == 202:
            acked.append(("s-restart", seq))
        else:
            assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1, r.text
        return r.status_code

    async with Running(broker.bootstrap, topic) as run:
        assert await post_one(run) == 202
        # A hung broker (SIGSTOP): the connection stays open but nothing is
        # acknowledged; the delivery deadline (send_timeout_s=3) answers 503.
        os.kill(broker.proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            async with asyncio.timeout(15):
                assert await post_one(run) == 503
            assert time.monotonic() - t0 < 3.0 + 2.0
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
        t0 = time.monotonic()
        while await post_one(run) != 202:
            assert time.monotonic() - t0 < 30, "did not recover after the broker resumed"
            await asyncio.sleep(0.2)
        # A dead broker: fast 503s while it is down, recovery once it is back.
        await asyncio.to_thread(broker.kill)
        t0 = time.monotonic()
        while await post_one(run) != 503:
            assert time.monotonic() - t0 < 20, "still 202 long after the broker died"
        assert (await run.client.get("/readyz")).status_code == 503
        assert await post_one(run) == 503
        await asyncio.to_thread(broker.restart)
        t0 = time.monotonic()
        while await post_one(run) != 202:
            assert time.monotonic() - t0 < 60, "did not recover after the broker returned"
            await asyncio.sleep(0.2)
        assert (await run.client.get("/readyz")).status_code == 200
        failed = run.registry.get_sample_value(c.METRIC_EXPORTER_FAILURES, {c.LABEL_EXPORTER: "kafka"})
        assert failed is not None and failed >= 2
    records = await read_topic(broker.bootstrap, topic)
    on_topic = Counter((b.session_id, b.seq) for b in beacons_of(records))
    # Every acknowledged beacon is there exactly once; a 503 promised nothing.
    assert all(on_topic[k] == 1 for k in acked), (acked, on_topic)


async def make_topic(bootstrap: str, partitions: int, **config: str) -> str:
    """A fresh topic with ``partitions`` partitions and topic-level ``config``."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    name = f"beacons-test-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config)])
    finally:
        await admin.close()
    return name


@pytest.mark.parametrize("sessions, per_session", [(1, 40), (37, 6)],
                         ids=["one session keeps its order in one partition",
                              "many sessions spread exactly as the default partitioner puts them"])
async def test_micro_batched_beacons_land_where_producer_send_would_put_them(
        kafka_broker: Any, sessions: int, per_session: int) -> None:
    from aiokafka.partitioner import DefaultPartitioner

    topic = await make_topic(kafka_broker.bootstrap, 4)
    sent = [(f"sess-{s}-{uuid.uuid4().hex[:6]}", q) for q in range(per_session) for s in range(sessions)]
    async with Running(kafka_broker.bootstrap, topic) as run:
        # Concurrent requests share group-commit records (one per partition).
        responses = await asyncio.gather(*(run.post(beacon_body(s, q)) for s, q in sent))
        assert [r.status_code for r in responses] == [202] * len(sent)
    records = await read_topic(kafka_broker.bootstrap, topic)
    partitioner = DefaultPartitioner()
    seen: Counter[tuple[str, int]] = Counter()
    order: dict[str, list[int]] = {}
    for rec in sorted(records, key=lambda r: (r.partition, r.offset)):
        group = codec.decode_record(rec.value)
        assert rec.key == group[0].session_id.encode()
        for b in group:  # every beacon of a group on its own session's partition
            assert rec.partition == partitioner(b.session_id.encode(), [0, 1, 2, 3], [0, 1, 2, 3])
            seen[(b.session_id, b.seq)] += 1
            order.setdefault(b.session_id, []).append(b.seq)
    assert seen == Counter(sent)
    assert all(seqs == sorted(seqs) for seqs in order.values()), order
    if sessions > 1:
        assert len({r.partition for r in records}) > 1


async def test_a_batch_the_broker_rejects_fails_every_caller_in_it(kafka_broker: Any) -> None:
    # A real broker-side failure: the topic takes no record batch over 1 KB,
    # and 40 concurrent beacons share one batch well over that (lz4 or not).
    # A 500 ms linger keeps them in one batch on a loaded machine (with 5 ms a
    # straggler once got a batch of its own, under 1 KB, and a 202).
    topic = await make_topic(kafka_broker.bootstrap, 1, **{"max.message.bytes": "1024"})
    sent = [(uuid.uuid4().hex, q) for q in range(40)]
    async with Running(kafka_broker.bootstrap, topic, **{"linger.ms": 500}) as run:
        responses = await asyncio.gather(*(run.post(beacon_body(s, q)) for s, q in sent))
        assert [r.status_code for r in responses] == [503] * len(sent)
        failed = run.registry.get_sample_value(c.METRIC_EXPORTER_FAILURES, {c.LABEL_EXPORTER: "kafka"})
        assert failed == len(sent)
    assert await read_topic(kafka_broker.bootstrap, topic) == []


@pytest.mark.parametrize(("group_max", "accepted_n"), [(1, 2), (4, 8)], ids=[
    "one beacon per record: two records fit, eight beacons get 503",
    "groups of four: two records (eight beacons) fit, the third group's two get 503"])
async def test_a_full_local_producer_queue_answers_503_and_stays_ready(
        kafka_broker: Any, group_max: int, accepted_n: int) -> None:
    # librdkafka holds at most 2 messages, and a long linger keeps the first
    # two queued while the rest arrive: produce() raises BufferError.
    topic = await make_topic(kafka_broker.bootstrap, 1)
    sent = [(uuid.uuid4().hex, q) for q in range(10)]
    # A long group linger too: only the count closes a group, however slow this machine is.
    options = {"queue.buffering.max.messages": 2, "linger.ms": 500,
               "group_max_beacons": group_max, "group_linger_s": 0.5}
    async with Running(kafka_broker.bootstrap, topic, **options) as run:
        responses = await asyncio.gather(*(run.post(beacon_body(s, q)) for s, q in sent))
        codes = [r.status_code for r in responses]
        assert sorted(codes) == [202] * accepted_n + [503] * (10 - accepted_n), codes
        assert all(int(r.headers["retry-after"]) >= 1 for r in responses if r.status_code == 503)
        assert run.exporter.ready()  # a full queue is back-pressure, not a broker failure
        assert (await run.post(beacon_body("after", 1))).status_code == 202
    accepted = Counter(sent[i] for i, code in enumerate(codes) if code == 202)
    accepted[("after", 1)] += 1
    records = await read_topic(kafka_broker.bootstrap, topic)
    assert Counter((b.session_id, b.seq) for b in beacons_of(records)) == accepted


class PurgeLosesReports:
    """A producer whose ``purge()`` loses the delivery report of every record but the first."""

    def __init__(self) -> None:
        self.reports: list[Callable[[Any, Any], None]] = []

    def produce(self, *_args: Any, on_delivery: Callable[[Any, Any], None], **_kwargs: Any) -> None:
        self.reports.append(on_delivery)

    def purge(self) -> None:
        del self.reports[1:]

    def poll(self, _timeout: float) -> int:
        while self.reports:
            self.reports.pop(0)(None, None)
        return 0


async def test_replacing_the_producer_fails_the_waiters_whose_report_the_purge_did_not_serve() -> None:
    """Every request waiting on an unserved record gets 503 within the purge's deadline, none hangs.

    A fake producer on purpose: the behaviour under test is the exporter's own
    bookkeeping of records in flight; a real librdkafka purge serves its
    reports too reliably to leave one unserved on demand.
    """
    exporter = KafkaExporter("unused:9092", send_timeout_s=0.2)
    old, fresh = PurgeLosesReports(), PurgeLosesReports()
    exporter._producer = old
    exporter._new_producer = lambda: fresh  # type: ignore[method-assign]
    loop = asyncio.get_running_loop()
    groups = [[loop.create_future() for _ in range(n)] for n in (2, 3, 1)]
    for futures in groups:
        exporter._produce_group(0, b"{}", b"k", None, [future_done(f) for f in futures])
    assert len(exporter._in_flight) == 3

    await asyncio.wait_for(exporter._replace_producer(), timeout=2)

    assert [f.result() for f in groups[0]] == [None, None]  # the one report served
    for fut in groups[1] + groups[2]:
        assert isinstance(fut.exception(), ExporterUnavailable)
        assert "delivery unknown" in str(fut.exception())
    assert exporter._in_flight == {} and exporter._producer is fresh


def raise_fatal_error(producer: Any, code: int, reason: bytes = b"raised by the test") -> None:
    """A real librdkafka fatal error on ``producer``, through librdkafka's own test hook.

    confluent-kafka does not wrap ``rd_kafka_test_fatal_error()``, so it is
    called with ctypes on the librdkafka the wheel bundles. The ``rd_kafka_t``
    pointer is the first field after ``PyObject_HEAD`` in confluent-kafka's
    ``Handle``; ``rd_kafka_name()`` checks that before anything is raised.
    """
    import confluent_kafka

    libs = sorted((Path(confluent_kafka.__file__).parent.parent / "confluent_kafka.libs")
                  .glob("librdkafka*.so*"))
    if not libs:
        pytest.skip("confluent-kafka without a bundled librdkafka (not a wheel)")
    rd = ctypes.CDLL(str(libs[0]))
    rd.rd_kafka_name.argtypes = [ctypes.c_void_p]
    rd.rd_kafka_name.restype = ctypes.c_char_p
    rd.rd_kafka_test_fatal_error.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]
    rd.rd_kafka_test_fatal_error.restype = ctypes.c_int
    rk = ctypes.c_void_p.from_address(id(producer) + object.__basicsize__).value
    assert rd.rd_kafka_name(rk).startswith(b"rdkafka#producer-")
    assert rd.rd_kafka_test_fatal_error(rk, code, reason) == 0


@pytest.mark.parametrize("pending", [0, 3], ids=[
    "with nothing in flight",
    "with a lingering record of three beacons, whose callers each get 503"])
async def test_a_fatal_producer_error_replaces_the_producer_which_becomes_ready_by_itself(
        kafka_broker: Any, caplog: pytest.LogCaptureFixture, pending: int) -> None:
    from confluent_kafka import KafkaError

    topic = await make_topic(kafka_broker.bootstrap, 1)
    # A long linger keeps the pending beacons in librdkafka's queue when the error hits.
    # (and a long group linger puts all of them in one record, however slow this machine is).
    options: dict[str, Any] = {"linger.ms": 1000, "group_linger_s": 0.2} if pending else {}
    async with Running(kafka_broker.bootstrap, topic, **options) as run:
        assert (await run.post(beacon_body("before", 1))).status_code == 202
        lingering = [asyncio.create_task(run.post(beacon_body("lingering", q))) for q in range(pending)]
        # One partition: the lingering beacons share one group-commit record.
        await wait_until(lambda: len(run.exporter._in_flight) == min(pending, 1), 5, "the beacons to be produced")
        old = run.exporter._producer
        caplog.set_level(logging.WARNING, logger="collector.exporters")
        raise_fatal_error(old, KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER)

        # Checked every loop iteration: not ready lasts at least a metadata round trip.
        deadline = time.monotonic() + 5
        while run.exporter.ready():
            assert time.monotonic() < deadline, "still ready after the fatal error"
            await asyncio.sleep(0)
        assert [r.status_code for r in await asyncio.gather(*lingering)] == [503] * pending
        await wait_until(lambda: run.exporter.ready() and run.exporter._producer is not old, 10,
                         "a fresh producer to become ready")
        assert (await run.post(beacon_body("after", 1))).status_code == 202
    fatal_logs = [r for r in caplog.records if "fatal producer error" in r.getMessage()]
    assert len(fatal_logs) == 1 and "OUT_OF_ORDER_SEQUENCE_NUMBER" in fatal_logs[0].getMessage()
    records = await read_topic(kafka_broker.bootstrap, topic)
    assert Counter((b.session_id, b.seq) for b in beacons_of(records)) == \
        Counter([("before", 1), ("after", 1)])
