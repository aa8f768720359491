"""Stage 1's consume/cut loop against a real broker: it survives what Kafka does to it.

The runner runs in the test's event loop (``Stage1Runner`` in-process); a plain
consumer of ``slo-partials`` feeds a :class:`slo.stage2.Stage2`, whose
cumulative attempts per region must equal what was produced: nothing lost,
nothing counted twice. Worker processes are tested in ``tests/reliability/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from slo import conventions as c
from slo.beacon import Beacon, Event, encode
from slo.spec import load_spec
from slo.stage1 import Stage1
from slo.stage2 import Stage2
from slo.stream.settings import Settings
from slo.stream.stage1_runner import Stage1Runner
from slo.stream.topics import decode_bundle, ensure_topics
from slo.telemetry import OFF
from streamslo.testing.beacons import record
from streamslo.testing.stream import produce_beacons

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
SPEC, _ = load_spec()
REGIONS = ("eu-west-1", "us-east-1")
PARTITIONS = 2  # of beacons and of slo-partials
SESSION_S = 6.0  # the broker's minimum session timeout


def beacons(first: int, n: int) -> list[tuple[bytes, bytes]]:
    """``n`` beacons numbered from ``first``, one playback attempt each, regions alternating."""
    now = time.time()
    out = []
    for i in range(first, first + n):
        session = f"s{i}"
        out.append(record(Beacon(session, 0, REGIONS[i % 2], c.KIND_RUM, now, now,
                                 [Event(c.EVENT_FIRST_FRAME, now, 100.0)])))
    return out


def expected(n: int) -> dict[str, int]:
    return {r: sum(1 for i in range(n) if REGIONS[i % 2] == r) for r in REGIONS}


class Pipeline:
    """A stage-1 runner plus a stage 2 reading its partials, in one event loop."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.stage2 = Stage2(SPEC)
        self.runner: Stage1Runner | None = None
        self.tasks: list[asyncio.Task[None]] = []

    def start_runner(self) -> Stage1Runner:
        settings = Settings(bootstrap=self.bootstrap, spec=SPEC, flush_interval_s=0.5,
                            session_timeout_s=SESSION_S, dedup_records=1000)
        self.runner = Stage1Runner(settings, Stage1(SPEC, dedup_records=1000), tracer=OFF)
        self.tasks.append(asyncio.create_task(self.runner.run()))
        return self.runner

    async def stop_runner(self) -> None:
        assert self.runner is not None
        self.runner.stop()
        await asyncio.wait_for(self.tasks.pop(), 30)

    async def read_partials(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.assign([TopicPartition(c.TOPIC_PARTIALS, p) for p in range(PARTITIONS)])
            while True:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for rec in records:
                        for partial in decode_bundle(rec.value):
                            self.stage2.apply(partial)
        finally:
            await consumer.stop()

    def attempts(self) -> dict[str, int]:
        snap = self.stage2.snapshot(time.time())
        return {r: snap.regions[r].series[(c.SLI_ERRORS, c.KIND_RUM)].attempts
                for r in REGIONS if r in snap.regions}

    async def wait_for(self, want: dict[str, int], timeout: float) -> None:
        """Until stage 2 shows ``want``; fails early when a runner task died."""
        deadline = time.monotonic() + timeout
        while self.attempts() != want:
            for task in self.tasks:
                if task.done():
                    raise AssertionError(f"the stage-1 runner stopped: {task.exception()!r}")
            assert time.monotonic() < deadline, f"stage 2 shows {self.attempts()}, want {want}"
            await asyncio.sleep(0.2)

    async def close(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        for task in self.tasks:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 30)


async def with_pipeline(bootstrap: str, scenario) -> None:  # type: ignore[no-untyped-def]
    await ensure_topics(bootstrap, beacons=PARTITIONS, partials=PARTITIONS)
    pipeline = Pipeline(bootstrap)
    reader = asyncio.create_task(pipeline.read_partials())
    try:
        await scenario(pipeline)
    finally:
        await pipeline.close()
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader


def test_stage1_rejoins_after_its_session_expired_and_loses_nothing(kafka_broker_factory):
    """The loaded-machine case: the loop stalls past the session timeout, then commits."""
    broker = kafka_broker_factory()

    async def scenario(p: Pipeline) -> None:
        runner = p.start_runner()
        await produce_beacons(broker.bootstrap, beacons(0, 200))
        await p.wait_for(expected(200), 60)
        await produce_beacons(broker.bootstrap, beacons(200, 200))
        deadline = time.monotonic() + 30
        while not any(s.hi > s.lo for s in runner.stage1._sources.values()):  # input awaiting a cut
            assert time.monotonic() < deadline, "stage 1 read nothing new"
            await asyncio.sleep(0.01)
        time.sleep(SESSION_S + 4)  # block the loop: no heartbeat, the group drops the member
        await produce_beacons(broker.bootstrap, beacons(400, 200))
        await p.wait_for(expected(600), 90)
        print(f"\nstage1: {runner.failed_cuts} failed cut(s) after the stall, then exact totals")
        assert runner.failed_cuts >= 1, "the stall should have made a commit fail"

    asyncio.run(with_pipeline(broker.bootstrap, scenario))


POISON = [
    b'{"session_id":"p","seq":1,"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b"\x00\xff" * 1000,
    b"",
    encode(Beacon("p2", 1, "eu-west-1", c.KIND_RUM, 1e300, 1e300, [Event(c.EVENT_ERROR, 1e300, None, True)])),
]


def test_poison_records_are_skipped_counted_and_never_stop_a_partition_even_after_a_restart(
    kafka_broker_factory,
):
    broker = kafka_broker_factory()

    async def scenario(p: Pipeline) -> None:
        runner = p.start_runner()
        await produce_beacons(broker.bootstrap, beacons(0, 100))
        await produce_beacons(broker.bootstrap, [(b"p", v) for v in POISON] * 2)
        await produce_beacons(broker.bootstrap, beacons(100, 100))
        await p.wait_for(expected(200), 60)
        assert runner.stage1.counters.skipped_records == {c.REASON_INVALID: 4, c.REASON_MALFORMED: 4}
        # A restart primes its duplicate memory from the same records: the path that
        # used to die on every restart.
        await p.stop_runner()
        runner = p.start_runner()
        await produce_beacons(broker.bootstrap, beacons(200, 100))
        await p.wait_for(expected(300), 60)
        assert runner.primed >= 200

    asyncio.run(with_pipeline(broker.bootstrap, scenario))
