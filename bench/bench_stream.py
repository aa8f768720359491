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
   Commits come once per cut (1 s), so each end of the window is known to a
   cut: the batch sizes itself so the window spans at least 10 cuts (it
   starts at ``--beacons`` and, when stage 1 finished in fewer, reruns on a
   fresh batch grown to about 15 cuts' worth with a fresh worker; see
   ``stream_measure.check_window``).
4. Freshness: with background load, single probe beacons are produced and the
   time until ``/metrics`` counts each one is measured.

Prints a table and ends with one ``RESULT`` line. Example::

    python bench/bench_stream.py                      # about 3 minutes
    python bench/bench_stream.py --beacons 500000 --probes 60

Tracing leg (``--tracing-rounds N``, instead of the legs above): N rounds of
two child-process workers on fresh batches, tracing off, then on
(``parentbased_traceidratio`` at ``--trace-ratio``, default 1 %, OTLP/HTTP to
``streamslo.testing.otlp_sink`` in this process). As the collector does at that ratio,
that fraction of the preloaded beacons carries a sampled ``traceparent``
header and the rest none. The overhead is the median over rounds of the
off / on stage-1 rates::

    python bench/bench_stream.py --tracing-rounds 3 --beacons 600000

Paired tracing (``--tracing-paired N``): the same comparison, but both workers
run at once, pinned to CPU 0, each on its own broker (topic names and the
stage-1 group are fixed, so two workers cannot share one), on the same beacons.
Whatever else the machine does then hits both alike, and the ratio of their
CPU per event is far steadier than legs run one after the other. ``--aa``
runs two untraced workers instead (how steady the method is); ``--headers-only``
leaves the second worker untraced but its beacons with the sampled headers::

    python bench/bench_stream.py --tracing-paired 4 --beacons 600000
    python bench/bench_stream.py --tracing-paired 3 --beacons 600000 --aa

The tracing legs use ``--beacons`` as given (every round the same size) and
stop with "use more --beacons" when a window spans fewer than 10 cuts.

Modules: ``stream_measure.py`` (commit-interval rate, baseline, freshness,
CPU split), ``stream_tracing.py`` (the two tracing comparisons).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from stream_measure import MIN_CUTS, baseline, cuts_spanned, end_offset_sum, freshness, stage1_rate
from stream_tracing import tracing_legs, tracing_paired

from slo import conventions as c
from streamslo.testing.beacons import lognormal_batch
from streamslo.testing.kafka import KafkaBroker
from streamslo.testing.stream import Worker, create_topic, metric_sum, produce_beacons, wait_until

MAX_ATTEMPTS = 3  # batches per leg before giving up on a long enough window


@dataclass
class Leg:
    """Stage 1's rate on one batch and what it was measured over."""

    rate: float  # events/s between the first and the last commit
    seconds: float
    beacons: int
    produce_s: float

    def window(self) -> str:
        return f"{self.seconds:.1f} s = {cuts_spanned(self.seconds):.0f} cuts on {self.beacons:,} beacons"


def measure_leg(bootstrap: str, args: argparse.Namespace, name: str, flags: tuple[str, ...], seed: int,
                with_baseline: bool) -> tuple[Leg, Worker, float | None]:
    """Stage 1 of a fresh worker on a fresh preloaded batch, grown until the window spans
    :data:`MIN_CUTS` cuts; returns the leg, the (running) worker and the baseline's seconds.

    The baseline, when asked for, reads the first batch before any worker starts.
    """
    n, base_s = args.beacons, None
    for attempt in range(MAX_ATTEMPTS):
        start = asyncio.run(end_offset_sum(bootstrap, args.partitions))
        data = lognormal_batch(n, args.events, seed=seed + attempt, now=time.time())
        t0 = time.perf_counter()
        asyncio.run(produce_beacons(bootstrap, data))
        produce_s = time.perf_counter() - t0
        del data
        if with_baseline and base_s is None:
            base_s = asyncio.run(baseline(bootstrap, args.partitions, n))
        worker = Worker(bootstrap, args.workdir, f"{name}-{attempt}", *flags).start()
        rate, _, seconds = asyncio.run(stage1_rate(bootstrap, start, start + n, args.events, 600))
        if cuts_spanned(seconds) >= MIN_CUTS:
            return Leg(rate, seconds, n, produce_s), worker, base_s
        worker.stop()
        grown = int(n * min(8.0, 1.5 * MIN_CUTS / max(cuts_spanned(seconds), 1.0)))
        print(f"{name}: stage 1 took {seconds:.2f} s = {cuts_spanned(seconds):.1f} cuts on {n:,} beacons "
              f"(< {MIN_CUTS}): again on a fresh batch of {grown:,}", flush=True)
        n = grown
    raise RuntimeError(f"{name}: stage 1 never spanned {MIN_CUTS} cuts in {MAX_ATTEMPTS} attempts")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kafka", default=None, help="fresh broker to use (default: start one)")
    p.add_argument("--beacons", type=int, default=600_000,
                   help="first batch per leg (grown until stage 1 spans 10 cuts)")
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
    legs: dict[str, Leg] = {}
    fresh: list[float] = []
    base_s = 0.0
    try:
        create_topic(bootstrap, c.TOPIC_BEACONS, args.partitions)
        for leg, flags in (("child process", ()), ("in the Faust process", ("--stage1-in-process",))):
            legs[leg], worker, base = measure_leg(bootstrap, args, f"bench{len(legs)}", flags,
                                                  seed=1 + 100 * len(legs), with_baseline=not legs)
            base_s = base or base_s
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
    child, in_faust = legs["child process"], legs["in the Faust process"]
    rate, rate_in = child.rate, in_faust.rate
    base_rate = args.beacons * args.events / base_s
    p50, p99 = (float(np.percentile(fresh, q)) for q in (50, 99))
    rows = [
        ("preload (aiokafka producer)", f"{child.beacons / child.produce_s:,.0f} beacons/s", ""),
        ("baseline: getmany + msgspec decode", f"{base_rate:,.0f} events/s",
         f"{args.beacons / base_s:,.0f} beacons/s"),
        ("stage 1 in `streamslo worker` (child process)", f"{rate:,.0f} events/s",
         f"{rate / base_rate:.2f}x baseline, {child.window()}"),
        ("stage 1 in the Faust process (--stage1-in-process)", f"{rate_in:,.0f} events/s",
         f"{rate_in / base_rate:.2f}x baseline, {in_faust.window()}"),
        (f"event -> /metrics freshness ({len(fresh)} probes, {args.load} beacons/s load)",
         f"p50 {p50:.2f} s", f"p99 {p99:.2f} s"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{args.events} events per beacon, {args.partitions} partitions, baseline on {args.beacons} beacons")
    for name, a, b in rows:
        print(f"{name:<{width}}  {a:>22}  {b}")
    print(f"RESULT stage1_events_per_s={rate:.0f} baseline_events_per_s={base_rate:.0f} "
          f"stage1_vs_baseline={rate / base_rate:.3f} stage1_in_faust_events_per_s={rate_in:.0f} "
          f"freshness_p50_s={p50:.3f} "
          f"freshness_p99_s={p99:.3f} events_per_beacon={args.events} "
          f"stage1_beacons={child.beacons} stage1_seconds={child.seconds:.2f} "
          f"stage1_in_faust_beacons={in_faust.beacons} stage1_in_faust_seconds={in_faust.seconds:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
