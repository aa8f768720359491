"""Tracing legs of ``bench/bench_stream.py``: stage 1 with tracing off vs on.

Use :func:`tracing_legs` (``--tracing-rounds N``: workers one after another on
fresh batches) or :func:`tracing_paired` (``--tracing-paired N``: both workers
at once, pinned to CPU 0, one broker each, on the same beacons; the steadier
method). Both print a table and end with a RESULT line.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import tempfile
import time
from pathlib import Path

from stream_measure import (
    check_window,
    commit_interval,
    cpu_split,
    end_offset_sum,
    otel_env,
    sampled_headers,
    stage1_rate,
    start_worker,
)

from slo import conventions as c
from streamslo.testing.beacons import lognormal_batch
from streamslo.testing.otlp_sink import OtlpSink
from streamslo.testing.stream import Worker, create_topic, produce_beacons


def tracing_legs(bootstrap: str, args: argparse.Namespace) -> int:
    """Stage-1 rate with tracing off vs on, alternating, on fresh batches; prints table + RESULT."""
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
                data = lognormal_batch(args.beacons, args.events, seed=seed, now=time.time())
                headers = sampled_headers(args.beacons, args.trace_ratio, seed)
                asyncio.run(produce_beacons(bootstrap, data, headers))
                env = otel_env(args.trace_ratio, sink.endpoint) if mode == "on" else {}
                spans0 = len(sink.spans)
                worker = start_worker(Worker(bootstrap, args.workdir, f"trace{rnd}{mode}"), env)
                try:
                    assert worker.proc is not None
                    rate, cpu_rate, seconds = asyncio.run(stage1_rate(
                        bootstrap, start, start + args.beacons, args.events, 600, worker.proc.pid))
                finally:
                    worker.stop()  # flushes its spans on the way out
                check_window(seconds, f"round {rnd} tracing {mode}")
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
        check_window(seconds, f"{name} {label}")
        events = records * args.events
        cpu = used.pop("cpu")
        out[label] = (events / seconds, events / cpu, {k: v / events * 1e6 for k, v in used.items()})
    return out


def tracing_paired(bootstraps: tuple[str, str], args: argparse.Namespace) -> int:
    """``--tracing-paired N``: rounds of :func:`paired_round`, tracing off vs on (or off vs off
    with ``--aa``); prints a table and a RESULT line."""
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
            data = lognormal_batch(args.beacons, args.events, seed=300 + rnd, now=time.time())
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
