"""Group commit without a broker: when groups close, what one record holds, who hears of a failure.

The broker-side behaviour (placement, acks, a full queue, a fatal producer
error) is in ``tests/test_collector_kafka.py``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from collector.group_commit import (
    Done,
    GroupCommit,
    future_done,
    murmur2,
    partition_for,
)
from slo.beacon import group_record


@pytest.mark.parametrize(
    ("key", "signed"),
    [
        pytest.param(b"21", -973932308, id="a two-byte key"),
        pytest.param(b"foobar", -790332482, id="a six-byte key"),
        pytest.param(b"a-little-bit-long-string", -985981536, id="a key of whole words"),
        pytest.param(b"a-little-bit-longer-string", -1486304829, id="a key with a two-byte tail"),
        pytest.param(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971, id="a long key"),
        pytest.param(b"abc", 479470107, id="a three-byte tail only"),
    ],
)
def test_murmur2_matches_the_kafka_java_client(key: bytes, signed: int) -> None:
    """Vectors from Kafka's UtilsTest.testMurmur2 (Java ints, so signed)."""
    assert murmur2(key) == signed & 0xFFFFFFFF
    assert partition_for(key, 7) == (signed & 0x7FFFFFFF) % 7


class Producer:
    """Records what GroupCommit hands over; ``ack()`` plays the broker."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.records: list[tuple[int, bytes, bytes, Any]] = []
        self.waiters: list[list[Done]] = []
        self.fail = fail

    def __call__(self, partition: int, value: bytes, key: bytes, headers: Any,
                 waiters: list[Done]) -> None:
        if self.fail is not None:
            raise self.fail
        self.records.append((partition, value, key, headers))
        self.waiters.append(waiters)

    def ack(self) -> None:
        for waiters in self.waiters:
            for done in waiters:
                done(None)


def waiting(groups: GroupCommit, partition: int, value: bytes, key: bytes,
            headers: Any = None) -> asyncio.Future[None]:
    """``groups.add`` with a future for its ``done``, as ``KafkaExporter.export`` does."""
    fut = asyncio.get_running_loop().create_future()
    groups.add(partition, value, key, future_done(fut), headers)
    return fut


async def test_beacons_within_the_linger_share_one_record_answered_by_one_ack() -> None:
    producer = Producer()
    groups = GroupCommit(producer, linger_s=0.01)
    futures = [waiting(groups, 0, b'{"n":%d}' % i, b"s%d" % i) for i in range(3)]
    assert producer.records == []  # still lingering
    await asyncio.sleep(0.03)
    assert producer.records == [(0, group_record([b'{"n":0}', b'{"n":1}', b'{"n":2}']), b"s0", None)]
    assert not any(f.done() for f in futures)  # 202 only after the ack
    producer.ack()
    await asyncio.gather(*futures)


@pytest.mark.parametrize(
    ("max_beacons", "max_bytes", "values", "records"),
    [
        pytest.param(2, 1024, [b"a", b"b", b"c"], [group_record([b"a", b"b"])], id="the count closes a group at once"),
        pytest.param(64, 4, [b"aa", b"bb", b"cc"], [group_record([b"aa", b"bb"])], id="the size closes a group at once"),
        pytest.param(64, 3, [b"aa", b"bb"], [b"aa"], id="a beacon that would overflow starts a new group"),
        pytest.param(1, 1024, [b"a", b"b"], [b"a", b"b"], id="max_beacons 1 writes one beacon per record"),
    ],
)
async def test_count_and_size_close_a_group_before_the_linger(
        max_beacons: int, max_bytes: int, values: list[bytes], records: list[bytes]) -> None:
    producer = Producer()
    groups = GroupCommit(producer, linger_s=10.0, max_beacons=max_beacons, max_bytes=max_bytes)
    for v in values:
        waiting(groups, 0, v, b"k")
    assert [r[1] for r in producer.records] == records
    groups.flush_all()  # no timer left behind
    producer.ack()


async def test_partitions_are_grouped_apart_and_headers_travel_with_their_group() -> None:
    producer = Producer()
    groups = GroupCommit(producer, linger_s=0)
    waiting(groups, 0, b"a", b"k0", [("traceparent", b"t1")])
    waiting(groups, 1, b"b", b"k1")
    waiting(groups, 0, b"c", b"k2", [("traceparent", b"t2")])
    await asyncio.sleep(0)  # linger 0: the end of this loop iteration
    assert sorted(producer.records) == [
        (0, group_record([b"a", b"c"]), b"k0", [("traceparent", b"t1"), ("traceparent", b"t2")]),
        (1, b"b", b"k1", None),
    ]
    producer.ack()


async def test_a_failed_produce_fails_every_waiter_of_its_group_and_logs_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    class QueueFull(Exception):
        pass

    groups = GroupCommit(Producer(fail=QueueFull("full")), linger_s=0.005)
    kept = waiting(groups, 0, b"a", b"k")
    abandoned = waiting(groups, 0, b"b", b"k")
    abandoned.cancel()  # its caller went away
    await asyncio.sleep(0.02)
    with pytest.raises(QueueFull):
        await kept
    del abandoned
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        import gc

        gc.collect()
    assert "exception was never retrieved" not in caplog.text


def test_a_group_of_one_is_the_beacon_itself() -> None:
    assert group_record([b"\x81\xa1v\x01"]) == b"\x81\xa1v\x01"


@pytest.mark.parametrize(("kwargs"), [
    pytest.param({"max_beacons": 0}, id="max_beacons 0 is refused"),
    pytest.param({"max_bytes": 0}, id="max_bytes 0 is refused"),
    pytest.param({"linger_s": -1.0}, id="a negative linger is refused"),
])
def test_impossible_limits_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        GroupCommit(Producer(), **kwargs)


class BrokenCallback(Exception):
    """Raised by a ``done`` callback: a bug in whoever waits on a beacon."""


async def add_three_and_close(groups: GroupCommit, how: str, heard: list[tuple[int, BaseException | None]]) -> None:
    """Three beacons in one group, the second's ``done`` raising; the group closes ``how``."""

    def recorder(i: int) -> Done:
        return lambda error: heard.append((i, error))

    def broken(error: BaseException | None) -> None:
        heard.append((1, error))
        raise BrokenCallback("a waiter's bug")

    for i, done in enumerate([recorder(0), broken, recorder(2)]):
        groups.add(0, b"v%d" % i, b"k", done)  # with max_beacons 3, the third add closes the group itself
    if how == "linger":
        await asyncio.sleep(0.02)
    elif how == "shutdown":
        groups.flush_all()


@pytest.mark.parametrize(
    ("how", "limits"),
    [
        pytest.param("count", {"max_beacons": 3, "linger_s": 10.0}, id="a group closed by its count inside add()"),
        pytest.param("linger", {"linger_s": 0.005}, id="a group closed by its linger timer"),
        pytest.param("shutdown", {"linger_s": 10.0}, id="a group closed by flush_all on shutdown"),
    ],
)
async def test_a_done_that_raises_on_a_failed_produce_is_logged_and_the_others_still_hear(
        caplog: pytest.LogCaptureFixture, how: str, limits: dict[str, Any]) -> None:
    class QueueFull(Exception):
        pass

    full = QueueFull("full")
    groups = GroupCommit(Producer(fail=full), **limits)
    heard: list[tuple[int, BaseException | None]] = []
    with caplog.at_level(logging.ERROR):
        await add_three_and_close(groups, how, heard)  # raises nothing
    assert heard == [(0, full), (1, full), (2, full)]
    errors = [(r.name, r.exc_info[0] if r.exc_info else None) for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [("collector.group_commit", BrokenCallback)]
