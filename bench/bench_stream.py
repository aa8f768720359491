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

Paired tracing (``--tracing-paired N``): the same comparison, but both workers
run at once, pinned to CPU 0, each on its own broker (topic names and the
stage-1 group are fixed, so two workers cannot share one), on the same beacons.
Whatever else the machine does then hits both alike, and the ratio of their
CPU per event is far steadier than legs run one after the other. ``--aa``
runs two untraced workers instead (how steady the method is); ``--headers-only``
leaves the second worker untraced but its beacons with the sampled headers::

    python bench/bench_stream.py --tracing-paired 4 --beacons 200000
    python bench/bench_stream.py --tracing-paired 3 --beacons 200000 --aa
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402
from aiokafka.errors import KafkaError  # noqa: E402

from bench.bench_ingest import cpu_seconds, thread_cpu_seconds  # noqa: E402
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


async def commit_interval(
    bootstrap: str, start: int, total: int, timeout: float,
    probe: Callable[[], dict[str, float]] = dict,
) -> tuple[int, float, dict[str, float]]:
    """(records, seconds, change of ``probe()``) between the first and the last stage-1 commit.

    Polls the group's committed offsets with an admin client, so measuring
    costs the worker nothing (scraping /metrics would: every scrape builds a
    snapshot on the worker's event loop). Commits happen once per cut.
    ``probe`` is read at both ends (e.g. the worker's CPU seconds).
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
                if done == first[1]:
                    raise RuntimeError("stage 1 committed the whole batch at once: use more beacons")
                last = probe()
                return done - first[1], now - first[0], {k: last[k] - v for k, v in first[2].items()}
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
    raise TimeoutError("stage 1 did not finish")


async def stage1_rate(
    bootstrap: str, start: int, total: int, events: int, timeout: float, pid: int | None = None,
) -> tuple[float, float]:
    """(events/s, seconds) between the first and the last stage-1 offset commit.

    With ``pid``, the second figure is instead events per CPU-second of that
    process tree over the same interval (robust to a shared machine).
    """
    def probe() -> dict[str, float]:
        return {"cpu": cpu_seconds(pid)} if pid is not None else {}

    records, seconds, used = await commit_interval(bootstrap, start, total, timeout, probe)
    rate = records * events / seconds
    return (rate, records * events / used["cpu"]) if pid is not None else (rate, seconds)


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


def tracing_legs(bootstrap: str, args: argparse.Namespace) -> int:
    """Stage-1 rate with tracing off vs on, alternating, on fresh batches; prints table + RESULT."""
    from tests.otlp_sink import OtlpSink

    create_topic(bootstrap, c.TOPIC_BEACONS, args.partitions)
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
                env = otel_env(args.trace_ratio, sink.endpoint) if mode == "on" else {}
                spans0 = len(sink.spans)
                worker = start_worker(Worker(bootstrap, args.workdir, f"trace{rnd}{mode}"), env)
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


def descendants(pid: int) -> set[int]:
    """Live descendants of ``pid`` (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    tree = {pid}
    for _ in range(4):
        tree |= {p for p, ppid in parents.items() if ppid in tree}
    return tree - {pid}


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


def paired_round(
    bootstraps: tuple[str, str], legs: list[tuple[str, dict[str, str], list[list[tuple[str, bytes]]] | None]],
    data: list[tuple[bytes, bytes]], workdir: Path, name: str, args: argparse.Namespace,
) -> dict[str, tuple[float, float, dict[str, float]]]:
    """Both ``legs`` (label, env, headers) on the same ``data``, one per broker, at the same time.

    Both workers (and so their stage-1 children) are pinned to CPU 0 and
    spawned in ``legs`` order. Returns per label: events/s, events per CPU-s
    of the worker's tree, and its CPU µs per event by part (see :func:`cpu_split`).
    """
    starts = [asyncio.run(end_offset_sum(b, args.partitions)) for b in bootstraps]

    async def preload() -> None:
        await asyncio.gather(*(produce_beacons(b, data, headers)
                               for b, (_, _, headers) in zip(bootstraps, legs, strict=True)))

    asyncio.run(preload())
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})  # inherited by the workers and their stage-1 children
    try:
        workers = [start_worker(Worker(b, workdir, f"{name}-{label}"), env)
                   for b, (label, env, _) in zip(bootstraps, legs, strict=True)]
    finally:
        os.sched_setaffinity(0, old)

    pids = [w.proc.pid for w in workers if w.proc is not None]

    async def measure() -> list[tuple[int, float, dict[str, float]]]:
        return list(await asyncio.gather(*(
            commit_interval(b, start, start + args.beacons, 600, functools.partial(cpu_split, pid))
            for b, start, pid in zip(bootstraps, starts, pids, strict=True))))

    try:
        results = asyncio.run(measure())
    finally:
        for w in workers:
            w.stop()  # a traced one flushes its spans on the way out
    out = {}
    for (label, _, _), (records, seconds, used) in zip(legs, results, strict=True):
        events = records * args.events
        cpu = used.pop("cpu")
        out[label] = (events / seconds, events / cpu, {k: v / events * 1e6 for k, v in used.items()})
    return out


def tracing_paired(bootstraps: tuple[str, str], args: argparse.Namespace) -> int:
    """``--tracing-paired N``: rounds of :func:`paired_round`, tracing off vs on (or off vs off
    with ``--aa``); prints a table and a RESULT line."""
    from tests.otlp_sink import OtlpSink

    for b in bootstraps:
        create_topic(b, c.TOPIC_BEACONS, args.partitions)
    a, b = ("off", "off2") if args.aa else ("off", "hdrs") if args.headers_only else ("off", "on")
    workdir = Path(tempfile.mkdtemp(prefix="paired-", dir=args.workdir))  # fresh Faust data dirs
    ratios: list[float] = []
    per_cpu: dict[str, list[float]] = {a: [], b: []}
    split: dict[str, list[dict[str, float]]] = {a: [], b: []}
    spans = sampled = 0
    print(f"paired: workers {a} and {b} at once on CPU 0, one broker each, {args.beacons} beacons "
          f"x {args.events} events, {args.partitions} partitions, trace ratio {args.trace_ratio:.2%}"
          f"{' (not used: A/A)' if args.aa else ''}; logs in {workdir}")
    print(f"{'round':>5} {a + ' ev/s':>11} {'ev/CPU-s':>10} {b + ' ev/s':>11} {'ev/CPU-s':>10} "
          f"{'CPU/ev ' + b + '/' + a:>14}   CPU ns/event faust main+threads, stage1 main+threads")
    with OtlpSink() as sink:
        for rnd in range(-1, args.tracing_paired):  # round -1: warm-up, discarded
            data = beacons(args.beacons, args.events, seed=300 + rnd, now=time.time())
            headers = None if args.aa else sampled_headers(args.beacons, args.trace_ratio, 300 + rnd)
            env = {} if args.aa or args.headers_only else otel_env(args.trace_ratio, sink.endpoint)
            legs = [(a, {}, None), (b, env, headers)]
            flip = rnd % 2 == 1  # alternate which worker (and which broker) goes first
            spans0, t0 = len(sink.spans), time.monotonic()
            r = paired_round(bootstraps, legs[::-1] if flip else legs, data, workdir, f"r{rnd}", args)
            ratio = r[a][1] / r[b][1]
            parts = "  ".join(f"{label} {us['faust main'] * 1e3:.0f}+{us['faust threads'] * 1e3:.0f}, "
                              f"{us['stage1 main'] * 1e3:.0f}+{us['stage1 threads'] * 1e3:.0f}"
                              for label, us in ((a, r[a][2]), (b, r[b][2])))
            print(f"{rnd:>5} {r[a][0]:>11,.0f} {r[a][1]:>10,.0f} {r[b][0]:>11,.0f} {r[b][1]:>10,.0f} "
                  f"{ratio:>14.3f}   {parts}   ({time.monotonic() - t0:.0f} s{', warm-up' if rnd < 0 else ''})", flush=True)
            if rnd < 0:
                continue
            ratios.append(ratio)
            for label in (a, b):
                per_cpu[label].append(r[label][1])
                split[label].append(r[label][2])
            time.sleep(1.0)
            spans += len(sink.spans) - spans0
            sampled += sum(1 for h in headers or [] if h)
    med = statistics.median(ratios)
    print(f"median CPU per event {b}/{a}: {med:.3f} (rounds: {', '.join(f'{x:.3f}' for x in ratios)}); "
          f"events per CPU-s {a} {statistics.median(per_cpu[a]):,.0f}, {b} {statistics.median(per_cpu[b]):,.0f}")
    for part in split[a][0]:  # where the difference goes: medians of the per-round differences
        ma, mb = (statistics.median(s[part] for s in split[label]) * 1e3 for label in (a, b))
        diff = statistics.median(sb[part] - sa[part] for sa, sb in zip(split[a], split[b], strict=True))
        print(f"  median CPU ns/event {part:<15} {a} {ma:7.1f}  {b} {mb:7.1f}  "
              f"{b}-{a} per round {diff * 1e3:+7.1f}")
    print(f"spans received {spans} (stage-1 batch spans + stage-2 merges) for {sampled} sampled messages")
    print(f"RESULT stage1_paired_cpu_ratio={med:.3f} stage1_paired_cpu_overhead_pct={(med - 1) * 100:.1f} "
          f"stage1_paired_cpu_ratio_min={min(ratios):.3f} stage1_paired_cpu_ratio_max={max(ratios):.3f} "
          f"aa={int(args.aa)} headers_only={int(args.headers_only)} rounds={args.tracing_paired} beacons={args.beacons} "
          f"events_per_beacon={args.events} trace_ratio={args.trace_ratio} spans={spans} "
          f"sampled_messages={sampled}")
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
    p.add_argument("--tracing-paired", type=int, default=0,
                   help="run only the paired tracing off/on comparison (two brokers), this many rounds")
    p.add_argument("--aa", action="store_true", help="with --tracing-paired: both workers untraced")
    p.add_argument("--headers-only", action="store_true",
                   help="with --tracing-paired: the second worker untraced, its beacons still with headers")
    args = p.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.tracing_paired:
        pair = (KafkaBroker(), KafkaBroker())
        try:
            for one in pair:
                one.start()
            return tracing_paired((pair[0].bootstrap, pair[1].bootstrap), args)
        finally:
            for one in pair:
                one.stop()
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
                def caught_up(w: Worker = worker) -> bool:
                    return metric_sum(w.scrape(), c.METRIC_STREAM_LAG, stage="1") == 0

                wait_until(caught_up, 60, "stage-1 lag 0")
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
