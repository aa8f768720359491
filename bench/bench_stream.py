"""Stream benchmark: stage-1 events/s of one worker process, and event -> /metrics freshness.

Runs on a real single-node Kafka (started here unless ``--kafka`` is given;
then the broker must be fresh: the benchmark uses the fixed topic names).

1. Preloads ``--beacons`` beacons of ``--events`` events into ``beacons``.
2. Baseline: a raw aiokafka consumer (``getmany`` + ``msgspec`` decode, nothing
   else) reads them all, in this process.
3. Stage 1: a real ``streamslo worker`` subprocess consumes the same records
   (dedup, panes, sketches, cuts produced to ``slo-partials`` with acks,
   offset commits, stage 2 and ``/metrics`` in the same process). The rate is
   measured from its committed offsets (polled from here, not from /metrics).
4. Freshness: with background load, single probe beacons are produced and the
   time until ``/metrics`` counts each one is measured.

Prints a table and ends with one ``RESULT`` line. Example::

    python bench/bench_stream.py --beacons 100000 --probes 30

Tracing leg (``--tracing-rounds N``, instead of the legs above): N rounds of
two child-process workers on fresh batches, tracing off, then on
(``parentbased_traceidratio`` at ``--trace-ratio``, default 1 %, OTLP/HTTP to
``tests/otlp_sink.py`` in this process). As the collector does at that ratio,
that fraction of the preloaded beacons carries a sampled ``traceparent``
header and the rest none. The overhead is the median over rounds of the
off / on stage-1 rates::

    python bench/bench_stream.py --tracing-rounds 3 --beacons 50000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402
from aiokafka.errors import KafkaError  # noqa: E402

from bench.bench_ingest import cpu_seconds  # noqa: E402
from scripts.kafka import KafkaBroker  # noqa: E402
from slo import conventions as c  # noqa: E402
from slo.beacon import Beacon, Event, decode, encode  # noqa: E402
from slo.stream.topics import STAGE1_GROUP  # noqa: E402
from tests.fixtures_kafka import (  # noqa: E402
    Worker,
    create_topic,
    metric_sum,
    produce_beacons,
    wait_until,
)

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")


def beacons(n: int, events: int, seed: int, now: float) -> list[tuple[bytes, bytes]]:
    rng = np.random.default_rng(seed)
    lat = rng.lognormal(np.log(100), 0.5, (n, events)).round(2)
    out = []
    for i in range(n):
        evs = [Event(c.EVENT_FIRST_FRAME if j % 5 == 0 else c.EVENT_INTERACTION,
                     now - 0.05 * j, float(lat[i, j])) for j in range(events)]
        session = f"b{i // 4:07d}"
        out.append((session.encode(), encode(Beacon(session, i % 4, REGIONS[i % 3], c.KIND_RUM,
                                                    now, now - 0.2, evs))))
    return out


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


async def stage1_rate(
    bootstrap: str, start: int, total: int, events: int, timeout: float, pid: int | None = None,
) -> tuple[float, float]:
    """(events/s, seconds) between the first and the last stage-1 offset commit.

    Polls the group's committed offsets with an admin client, so measuring
    costs the worker nothing (scraping /metrics would: every scrape builds a
    snapshot on the worker's event loop). Commits happen once per cut. With
    ``pid``, the second figure is instead events per CPU-second of that
    process tree over the same interval (robust to a shared machine).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    first = None
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
                first = (now, done)
                cpu0 = cpu_seconds(pid) if pid is not None else 0.0
            if done >= total and first is not None:
                seconds = now - first[0]
                if pid is not None:
                    return (done - first[1]) * events / seconds, (done - first[1]) * events / (
                        cpu_seconds(pid) - cpu0)
                return (done - first[1]) * events / seconds, seconds
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
    raise TimeoutError("stage 1 did not finish")


async def freshness(bootstrap: str, worker: Worker, probes: int, load_per_s: int) -> list[float]:
    """Seconds from producing a probe beacon to seeing it counted on /metrics, under load."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=2)
    await producer.start()
    stop = asyncio.Event()

    async def load() -> None:
        i = 0
        while not stop.is_set():
            for key, value in beacons(load_per_s // 10, 20, seed=1000 + i, now=time.time()):
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


def tracing_legs(bootstrap: str, args: argparse.Namespace) -> int:
    """Stage-1 rate with tracing off vs on, alternating, on fresh batches; prints table + RESULT."""
    from tests.otlp_sink import OtlpSink

    create_topic(bootstrap, c.TOPIC_BEACONS, args.partitions)
    otel = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": str(args.trace_ratio)}
    rates: dict[str, list[float]] = {"off": [], "on": []}
    per_cpu: dict[str, list[float]] = {"off": [], "on": []}
    spans: list[int] = []
    sampled_total = 0
    with OtlpSink() as sink:
        # A discarded warm-up leg first: the first worker on a fresh broker is always slow.
        for rnd in range(-1, args.tracing_rounds):
            for mode in ("off",) if rnd < 0 else ("off", "on") if rnd % 2 == 0 else ("on", "off"):
                start = asyncio.run(end_offset_sum(bootstrap, args.partitions))
                seed = 102 + 2 * rnd + (mode == "on")
                data = beacons(args.beacons, args.events, seed=seed, now=time.time())
                headers = sampled_headers(args.beacons, args.trace_ratio, seed)
                asyncio.run(produce_beacons(bootstrap, data, headers))
                env = {**otel, "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint} if mode == "on" else {}
                os.environ.update(env)
                spans0 = len(sink.spans)
                try:
                    worker = Worker(bootstrap, args.workdir, f"trace{rnd}{mode}").start()
                finally:
                    for k in env:
                        del os.environ[k]
                try:
                    assert worker.proc is not None
                    rate, cpu_rate = asyncio.run(stage1_rate(
                        bootstrap, start, start + args.beacons, args.events, 600, worker.proc.pid))
                finally:
                    worker.stop()  # flushes its spans on the way out
                print(f"round {rnd} tracing {mode:>3}: {rate:,.0f} events/s, "
                      f"{cpu_rate:,.0f} events per worker CPU-s", flush=True)
                if rnd < 0:
                    continue
                rates[mode].append(rate)
                per_cpu[mode].append(cpu_rate)
                if mode == "on":
                    time.sleep(1.0)
                    spans.append(len(sink.spans) - spans0)
                    sampled_total += sum(1 for h in headers if h)
    ratios = [on / off for on, off in zip(rates["on"], rates["off"], strict=True)]
    ratio = statistics.median(ratios)
    # CPU per event, on / off, per round (the worker's process tree: stage 1, stage 2, Faust).
    cpu_ratios = [off / on for on, off in zip(per_cpu["on"], per_cpu["off"], strict=True)]
    cpu_ratio = statistics.median(cpu_ratios)
    print(f"\n{args.beacons} beacons x {args.events} events per leg, {args.partitions} partitions, "
          f"{args.tracing_rounds} rounds, sampled messages {args.trace_ratio:.2%}")
    print(f"{'tracing':<8} {'median events/s':>16} {'events/CPU-s':>13}  rounds (events/s)")
    for mode in ("off", "on"):
        print(f"{mode:<8} {statistics.median(rates[mode]):>16,.0f} "
              f"{statistics.median(per_cpu[mode]):>13,.0f}  "
              f"{', '.join(f'{r:,.0f}' for r in rates[mode])}")
    print(f"CPU per event on/off per round: {', '.join(f'{r:.3f}' for r in cpu_ratios)}")
    print(f"on/off rate per round: {', '.join(f'{r:.3f}' for r in ratios)}; spans received "
          f"{sum(spans)} (stage-1 batch spans + stage-2 merges) for {sampled_total} sampled messages")
    print(f"RESULT stage1_off_events_per_s={statistics.median(rates['off']):.0f} "
          f"stage1_traced_events_per_s={statistics.median(rates['on']):.0f} "
          f"stage1_traced_rate_ratio={ratio:.3f} stage1_traced_cpu_ratio={cpu_ratio:.3f} "
          f"stage1_traced_cpu_overhead_pct={(cpu_ratio - 1) * 100:.1f} "
          f"trace_ratio={args.trace_ratio} rounds={args.tracing_rounds} beacons={args.beacons} "
          f"events_per_beacon={args.events} spans={sum(spans)} sampled_messages={sampled_total}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kafka", default=None, help="fresh broker to use (default: start one)")
    p.add_argument("--beacons", type=int, default=100_000)
    p.add_argument("--events", type=int, default=20)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--probes", type=int, default=30)
    p.add_argument("--load", type=int, default=1000, help="background beacons/s during probes")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/streamslo-bench-stream"))
    p.add_argument("--tracing-rounds", type=int, default=0,
                   help="run only the tracing off/on comparison, this many rounds")
    p.add_argument("--trace-ratio", type=float, default=0.01)
    args = p.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    broker = None if args.kafka else KafkaBroker().start()
    bootstrap = args.kafka or broker.bootstrap  # type: ignore[union-attr]
    if args.tracing_rounds:
        try:
            return tracing_legs(bootstrap, args)
        finally:
            if broker is not None:
                broker.stop()
    worker = None
    legs: dict[str, tuple[float, float]] = {}
    fresh: list[float] = []
    try:
        create_topic(bootstrap, c.TOPIC_BEACONS, args.partitions)
        total_events = args.beacons * args.events
        produce_s = base_s = 0.0
        for leg, flags in (("child process", ()), ("in the Faust process", ("--stage1-in-process",))):
            # Each leg reads its own fresh batch (the group resumes after the previous leg).
            start = asyncio.run(end_offset_sum(bootstrap, args.partitions))
            data = beacons(args.beacons, args.events, seed=1 + len(legs), now=time.time())
            t0 = time.perf_counter()
            asyncio.run(produce_beacons(bootstrap, data))
            produce_s = time.perf_counter() - t0
            if not legs:
                base_s = asyncio.run(baseline(bootstrap, args.partitions, args.beacons))
            worker = Worker(bootstrap, args.workdir, f"bench{len(legs)}", *flags).start()
            legs[leg] = asyncio.run(
                stage1_rate(bootstrap, start, start + args.beacons, args.events, 600)
            )
            if len(legs) == 1:  # freshness on the default configuration
                wait_until(lambda w=worker: metric_sum(w.scrape(), c.METRIC_STREAM_LAG, stage="1") == 0,
                           60, "stage-1 lag 0")
                fresh = asyncio.run(freshness(bootstrap, worker, args.probes, args.load))
            worker.stop()
            worker = None
    finally:
        if worker is not None:
            worker.stop()
        if broker is not None:
            broker.stop()
    rate, stage1_s = legs["child process"]
    rate_in, _ = legs["in the Faust process"]
    base_rate = total_events / base_s
    p50, p99 = (float(np.percentile(fresh, q)) for q in (50, 99))
    rows = [
        ("preload (aiokafka producer)", f"{args.beacons / produce_s:,.0f} beacons/s", ""),
        ("baseline: getmany + msgspec decode", f"{base_rate:,.0f} events/s",
         f"{args.beacons / base_s:,.0f} beacons/s"),
        ("stage 1 in `streamslo worker` (child process)", f"{rate:,.0f} events/s",
         f"{rate / base_rate:.2f}x baseline"),
        ("stage 1 in the Faust process (--stage1-in-process)", f"{rate_in:,.0f} events/s",
         f"{rate_in / base_rate:.2f}x baseline"),
        (f"event -> /metrics freshness ({len(fresh)} probes, {args.load} beacons/s load)",
         f"p50 {p50:.2f} s", f"p99 {p99:.2f} s"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{args.beacons} beacons x {args.events} events, {args.partitions} partitions")
    for name, a, b in rows:
        print(f"{name:<{width}}  {a:>22}  {b}")
    print(f"RESULT stage1_events_per_s={rate:.0f} baseline_events_per_s={base_rate:.0f} "
          f"stage1_vs_baseline={rate / base_rate:.3f} stage1_in_faust_events_per_s={rate_in:.0f} "
          f"freshness_p50_s={p50:.3f} "
          f"freshness_p99_s={p99:.3f} beacons={args.beacons} events_per_beacon={args.events} "
          f"stage1_seconds={stage1_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
