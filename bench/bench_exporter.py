"""The Kafka exporter alone (no HTTP): librdkafka vs a bare aiokafka send, beacons per CPU-second.

Starts a real broker (``streamslo.testing.kafka.KafkaBroker``) with a 4-partition
topic, then runs interleaved rounds; in each round every variant exports
``--n`` 20-event beacons (unique ``(session_id, seq)``) through
``--concurrency`` tasks, each awaiting ``export()`` as the ingest endpoint
does. Variants:

- ``aiokafka_send``: the baseline, :class:`AIOKafkaSend`: an
  ``AIOKafkaProducer`` (acks=all, idempotent, lz4, linger 5 ms) and
  ``await (await producer.send(...))`` per beacon, the core of the
  aiokafka exporter the collector used before (``AIOKafkaExporter``, removed
  once librdkafka measured 0.83x its CPU per beacon end to end);
- ``librdkafka``: ``collector.exporters.KafkaExporter`` (delivery reports
  served by ``poll(0)`` on the event loop every 1 ms while deliveries are
  pending).

Serving the delivery reports from a poll thread instead (``poll(0.1)``, results
handed to the loop with ``call_soon_threadsafe``, batched per poll or one per
message) was measured here and dropped (4 rounds, per-round median ratios of
beacons per CPU-second): loop polling 1.12x the batched thread, which did
1.06x one wake-up per message.

CPU is ``time.process_time()`` of this process, which includes librdkafka's
threads (the broker is another process). The process is pinned to one CPU
(``--no-pin`` to disable) like the collector's server in bench_ingest.

    flock /tmp/s2/bench.lock python bench/bench_exporter.py --rounds 4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from collector.exporters import ExporterUnavailable, KafkaExporter
from slo import beacon as codec
from slo.beacon import Beacon, Event
from streamslo.testing.kafka import KafkaBroker
from streamslo.testing.stream import create_topic

TOPIC = "bench-exporter"
EVENTS = 20
VARIANTS = ("aiokafka_send", "librdkafka")


class AIOKafkaSend:
    """The baseline: one aiokafka send per beacon, awaited until acknowledged (no probe, no deadline)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._producer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                          enable_idempotence=True, compression_type="lz4",
                                          linger_ms=5)
        await self._producer.start()

    def ready(self) -> bool:
        return self._producer is not None

    async def export(self, beacon: Beacon) -> None:
        await (await self._producer.send(self.topic, codec.encode(beacon),
                                         key=beacon.session_id.encode()))

    async def shutdown(self) -> None:
        await self._producer.stop()


def beacons(tag: str, n: int) -> list[Beacon]:
    """``n`` 20-event beacons over 1000 sessions, as the collector builds them."""
    now = time.time()
    events = [Event("first_frame", now - 1, 100.0)] + [
        Event("interaction", now - 1 + i / 100, 20.0 + i) for i in range(EVENTS - 2)
    ] + [Event("error", now, None, True)]
    return [Beacon(f"{tag}-s{i % 1000}", i, "eu-west-1", "rum", now, now - 0.2, events)
            for i in range(n)]


def make(variant: str, bootstrap: str) -> Any:
    if variant == "aiokafka_send":
        return AIOKafkaSend(bootstrap, TOPIC)
    return KafkaExporter(bootstrap, TOPIC)


@dataclass
class Run:
    variant: str
    n: int
    cpu_s: float
    wall_s: float
    latencies: np.ndarray
    failed: int

    @property
    def per_cpu_s(self) -> float:
        return self.n / self.cpu_s

    @property
    def per_s(self) -> float:
        return self.n / self.wall_s


async def export_all(exp: Any, items: list[Beacon], concurrency: int) -> tuple[list[float], int]:
    it = iter(items)
    lat: list[float] = []
    failed = 0

    async def worker() -> None:
        nonlocal failed
        for b in it:
            t0 = time.perf_counter()
            try:
                await exp.export(b)
            except ExporterUnavailable:
                failed += 1
            lat.append(time.perf_counter() - t0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return lat, failed


async def one_run(variant: str, bootstrap: str, rnd: int, n: int, concurrency: int) -> Run:
    exp = make(variant, bootstrap)
    await exp.start()
    t0 = time.monotonic()
    while not exp.ready():
        if time.monotonic() - t0 > 30:
            raise RuntimeError(f"{variant}: not ready after 30 s")
        await asyncio.sleep(0.05)
    try:
        await export_all(exp, beacons(f"warm-{variant}-{rnd}", 1000), concurrency)
        items = beacons(f"r{rnd}-{variant}", n)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        lat, failed = await export_all(exp, items, concurrency)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        await exp.shutdown()
    return Run(variant, n, cpu, wall, np.array(lat) * 1000, failed)


def report(runs: list[Run], rounds: int) -> None:
    print(f"\n{'variant':<20}{'beacons/CPU-s':>15}{'beacons/s':>12}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'failed':>8}   (medians over {rounds} rounds)")
    med: dict[str, dict[str, float]] = {}
    for v in VARIANTS:
        rs = [r for r in runs if r.variant == v]
        if not rs:
            continue
        med[v] = {
            "cpu": statistics.median(r.per_cpu_s for r in rs),
            "wall": statistics.median(r.per_s for r in rs),
            "p50": statistics.median(float(np.percentile(r.latencies, 50)) for r in rs),
            "p99": statistics.median(float(np.percentile(r.latencies, 99)) for r in rs),
        }
        failed = sum(r.failed for r in rs)
        m = med[v]
        print(f"{v:<20}{m['cpu']:>15,.0f}{m['wall']:>12,.0f}{m['p50']:>9.2f}{m['p99']:>9.2f}{failed:>8}")

    def ratio(new: str, old: str) -> float:
        olds = [r for r in runs if r.variant == old]
        news = [r for r in runs if r.variant == new]
        return statistics.median(a.per_cpu_s / b.per_cpu_s for a, b in zip(news, olds, strict=True))

    r_new = ratio("librdkafka", "aiokafka_send")
    print(f"\nper-round median ratio of beacons/CPU-s: librdkafka/aiokafka_send = {r_new:.2f}")
    print("RESULT " + " ".join([
        *(f"{v}_per_cpu_s={med[v]['cpu']:.0f}" for v in VARIANTS),
        *(f"{v}_per_s={med[v]['wall']:.0f}" for v in VARIANTS),
        *(f"{v}_p50_ms={med[v]['p50']:.2f}" for v in VARIANTS),
        *(f"{v}_p99_ms={med[v]['p99']:.2f}" for v in VARIANTS),
        f"ratio_librdkafka_aiokafka_send={r_new:.2f}",
        f"failed={sum(r.failed for r in runs)}",
    ]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--warmup-rounds", type=int, default=1,
                    help="discarded rounds first: a cold broker JVM makes librdkafka's broker "
                         "thread spin (up to 5x the CPU per beacon in the first rounds)")
    ap.add_argument("--kafka", help="an existing broker (default: start one)")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = ap.parse_args()
    if not args.no_pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # librdkafka's threads inherit it
    broker = None
    bootstrap = args.kafka
    if bootstrap is None:
        broker = KafkaBroker().start()
        bootstrap = broker.bootstrap
    try:
        create_topic(bootstrap, TOPIC, 4)
        runner: Any = asyncio.run
        if args.loop == "uvloop":
            import uvloop

            runner = uvloop.run
        runs: list[Run] = []
        for rnd in range(-args.warmup_rounds, args.rounds):
            for v in VARIANTS:
                run = runner(one_run(v, bootstrap, rnd, args.n, args.concurrency))
                if rnd >= 0:
                    runs.append(run)
                print(f"round {rnd if rnd >= 0 else 'warm-up'} {v:<20} {run.per_cpu_s:>9,.0f} beacons/CPU-s "
                      f"{run.per_s:>9,.0f} beacons/s  p50 {np.percentile(run.latencies, 50):.2f} ms "
                      f"p99 {np.percentile(run.latencies, 99):.2f} ms  failed {run.failed}",
                      flush=True)
        report(runs, args.rounds)
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
