"""Measuring a real ``streamslo worker`` from outside: stage-1 rate, CPU, freshness.

Use :func:`commit_interval` / :func:`stage1_rate` for stage 1's events per
second (and per CPU-second of the worker's tree) between its first and last
offset commit on a preloaded batch, :func:`check_window` to refuse a window
too short to mean anything, :func:`baseline` for a raw consumer on the same
records, :func:`freshness` for event -> ``/metrics`` under load, and
:func:`cpu_split` for where a worker's CPU goes.

    records, seconds, used = asyncio.run(commit_interval(bootstrap, start, start + n, 600))
    check_window(seconds, "stage 1")
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable
from typing import cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from cpu_accounting import cpu_seconds, descendants, thread_cpu_seconds

from slo import conventions as c
from slo.beacon import Beacon, Event, decode, encode
from slo.stream.settings import Settings
from slo.stream.topics import STAGE1_GROUP
from streamslo.testing.beacons import lognormal_batch
from streamslo.testing.stream import Worker, metric_sum

# The worker's default cut (and commit) interval.
FLUSH_S = cast(float, Settings.__dataclass_fields__["flush_interval_s"].default)
MIN_CUTS = 10  # a stage-1 rate needs a window of at least this many cuts


async def baseline(bootstrap: str, partitions: int, total: int) -> float:
    """Seconds for raw getmany + msgspec decode of ``total`` records."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                max_partition_fetch_bytes=4 << 20, fetch_max_bytes=16 << 20)
    await consumer.start()
    tps = [TopicPartition(c.TOPIC_BEACONS, p) for p in range(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    seen = events = 0
    t0 = time.perf_counter()
    while seen < total:
        for records in (await consumer.getmany(timeout_ms=500, max_records=20_000)).values():
            for rec in records:
                events += len(decode(rec.value).events)
            seen += len(records)
    elapsed = time.perf_counter() - t0
    await consumer.stop()
    return elapsed


async def end_offset_sum(bootstrap: str, partitions: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(c.TOPIC_BEACONS, p) for p in range(partitions)])
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


async def commit_interval(
    bootstrap: str, start: int, total: int, timeout: float,
    probe: Callable[[], dict[str, float]] = dict,
) -> tuple[int, float, dict[str, float]]:
    """(records, seconds, change of ``probe()``) between the first and the last stage-1 commit.

    Polls the group's committed offsets with an admin client, so measuring
    costs the worker nothing (scraping /metrics would: every scrape builds a
    snapshot on the worker's event loop). Commits happen once per cut, every
    :data:`FLUSH_S`: the window is only as good as the number of cuts it spans
    (see :func:`check_window`). ``probe`` is read at both ends (e.g. the
    worker's CPU seconds).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    first: tuple[float, int, dict[str, float]] | None = None
    try:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            try:
                offsets = await admin.list_consumer_group_offsets(STAGE1_GROUP)
            except KafkaError:  # the group (or __consumer_offsets) does not exist yet
                await asyncio.sleep(0.2)
                continue
            done = sum(max(0, m.offset) for m in offsets.values())
            now = time.monotonic()
            if done > start and first is None:
                first = (now, done, probe())
            if done >= total and first is not None:
                last = probe()
                return done - first[1], now - first[0], {k: last[k] - v for k, v in first[2].items()}
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
    raise TimeoutError("stage 1 did not finish")


def cuts_spanned(seconds: float) -> float:
    """How many commit intervals (cuts) a measuring window of ``seconds`` spans."""
    return seconds / FLUSH_S


def check_window(seconds: float, what: str) -> None:
    """Refuse a rate measured over fewer than :data:`MIN_CUTS` cuts: each end of the window is
    only known to within one cut, so 2 cuts can read 2x off (as a 1.9 M events/s reading did)."""
    if cuts_spanned(seconds) < MIN_CUTS:
        raise RuntimeError(f"{what}: measured over {seconds:.2f} s = {cuts_spanned(seconds):.1f} cuts "
                           f"(< {MIN_CUTS}); use more --beacons")


async def stage1_rate(
    bootstrap: str, start: int, total: int, events: int, timeout: float, pid: int | None = None,
) -> tuple[float, float, float]:
    """(events/s, events per CPU-second, seconds) between the first and the last stage-1 commit.

    The CPU figure is of ``pid``'s process tree over the same interval (robust
    to a shared machine); NaN without ``pid``.
    """
    def probe() -> dict[str, float]:
        return {"cpu": cpu_seconds(pid)} if pid is not None else {}

    records, seconds, used = await commit_interval(bootstrap, start, total, timeout, probe)
    rate = records * events / seconds if seconds > 0 else float("inf")
    per_cpu = records * events / used["cpu"] if used.get("cpu") else float("nan")
    return rate, per_cpu, seconds


async def freshness(bootstrap: str, worker: Worker, probes: int, load_per_s: int) -> list[float]:
    """Seconds from producing a probe beacon to seeing it counted on /metrics, under load."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=2)
    await producer.start()
    stop = asyncio.Event()

    async def load() -> None:
        i = 0
        while not stop.is_set():
            for key, value in lognormal_batch(load_per_s // 10, 20, seed=1000 + i, now=time.time()):
                await producer.send(c.TOPIC_BEACONS, value, key=key)
            i += 1
            await asyncio.sleep(0.1)

    task = asyncio.create_task(load())
    out = []
    try:
        for i in range(probes):
            region = "sa-east-1"  # only probes go there
            before = metric_sum(await asyncio.to_thread(worker.scrape), c.METRIC_ATTEMPTS, region=region)
            now = time.time()
            probe = Beacon(f"probe{i}", 0, region, c.KIND_PROBE, now, now,
                           [Event(c.EVENT_FIRST_FRAME, now, 100.0)])
            t0 = time.monotonic()
            await producer.send(c.TOPIC_BEACONS, encode(probe), key=probe.session_id.encode())
            while metric_sum(await asyncio.to_thread(worker.scrape), c.METRIC_ATTEMPTS,
                             region=region) <= before:
                await asyncio.sleep(0.05)
                if time.monotonic() - t0 > 30:
                    raise TimeoutError("probe never counted")
            out.append(time.monotonic() - t0)
    finally:
        stop.set()
        await task
        await producer.stop()
    return out


def sampled_headers(n: int, ratio: float, seed: int) -> list[list[tuple[str, bytes]]]:
    """Per message: a sampled W3C ``traceparent`` with probability ``ratio``, else no header."""
    rng = random.Random(seed)
    return [[("traceparent", f"00-{rng.getrandbits(128):032x}-{rng.getrandbits(64) or 1:016x}-01".encode())]
            if rng.random() < ratio else [] for _ in range(n)]


def otel_env(ratio: float, endpoint: str) -> dict[str, str]:
    """A traced worker's environment: 1-in-``1/ratio`` root sampling, OTLP/HTTP to ``endpoint``."""
    return {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": str(ratio), "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}


def start_worker(worker: Worker, env: dict[str, str]) -> Worker:
    """Start ``worker`` with ``env`` added to this process's environment (removed again after)."""
    os.environ.update(env)
    try:
        return worker.start()
    finally:
        for k in env:
            del os.environ[k]


def cpu_split(pid: int) -> dict[str, float]:
    """CPU seconds of a worker's tree, and by part: the Faust process (stage 2, /metrics) and
    its descendants (the stage-1 child; the idle multiprocessing resource tracker), each as
    main (event-loop) thread vs other threads."""
    parts = {"cpu": cpu_seconds(pid), "faust main": 0.0, "faust threads": 0.0,
             "stage1 main": 0.0, "stage1 threads": 0.0}
    for proc, part in [(pid, "faust"), *((child, "stage1") for child in descendants(pid))]:
        try:
            main, other = thread_cpu_seconds(proc)
        except OSError:  # exited
            continue
        parts[f"{part} main"] += main
        parts[f"{part} threads"] += other
    return parts
