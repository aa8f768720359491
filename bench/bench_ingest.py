"""Ingest throughput and latency: this collector vs a FastAPI + pydantic baseline, one run.

Each leg starts a server *process* (uvicorn, uvloop + httptools, 1 worker,
pinned to CPU 0) and drives it from this process (pinned to CPU 1) with a
loopback HTTP/1.1 keep-alive load generator written on raw asyncio
protocols (cheap enough to saturate one server core). Traffic goes to
127.0.0.1 only and every phase is bounded by a request count and a time.

Legs (20-event beacons, unique (session_id, seq) per request):

- ``floor``: a raw ASGI app that reads the body and answers 202 (uvicorn's own cost);
- ``floor_protocol``: httptools on a bare asyncio protocol answering 202 (no server
  framework at all; ``--paired floor,floor_protocol`` is what the ingest fast path aims at);
- ``pydantic``: FastAPI route with a pydantic body model, answering 202 (the baseline);
- ``inprocess``: this collector with the InProcessExporter (no-op sink);
- ``kafka``: this collector producing to a real broker (acks=all, idempotent,
  librdkafka), started with ``streamslo.testing.kafka.KafkaBroker``; topic with 4
  partitions, warmed with a throwaway burst first;
- ``pydantic_kafka``: the baseline route producing each beacon with aiokafka
  ``send_and_wait`` (same producer settings): the baseline for the Kafka leg;
- ``inprocess_traced``, ``kafka_traced``: the same with tracing on
  (``OTEL_TRACES_SAMPLER=parentbased_traceidratio``, ratio ``--trace-ratio``,
  default 1 %), exporting OTLP/HTTP to ``streamslo.testing.otlp_sink`` running in this
  process on 127.0.0.1. The untraced legs run with every ``OTEL_*`` variable
  removed. ``--rounds N`` repeats all legs N times; the tracing overhead is
  the median over rounds of the untraced / traced beacons per server CPU-second.

Phases per leg: closed loop at ``--concurrency`` connections (max rate,
p50/p99), then open loop at 70 % of that max rate (latency measured from
each request's scheduled send time, so queueing counts).

    python bench/bench_ingest.py                      # all legs
    python bench/bench_ingest.py --legs pydantic,inprocess --seconds 3
    python bench/bench_ingest.py --legs inprocess,inprocess_traced,kafka,kafka_traced --rounds 3
    python bench/bench_ingest.py --paired inprocess,inprocess_traced --rounds 5   # tracing cost
    python bench/bench_ingest.py --paired inprocess,inprocess --rounds 3          # A/A: ~1.00
    python bench/bench_ingest.py --paired kafka@HEAD~1,kafka --rounds 3          # a change vs its parent
    python bench/bench_ingest.py --paired kafka,kafka:granian --rounds 3          # granian vs uvicorn
    python bench/bench_ingest.py --vs-otel --rounds 3                             # vs OpenTelemetry Collector

``--paired A,B`` serves both legs at once on the server core, half the
connections each, so whatever else the machine does hits both alike; the
ratio of their CPU per beacon is then steady to about 1 % (an A,A run reads
0.96-1.00), where legs run one after another swung by 20 %.

Targets (issue 3): >= 10k beacons/s on one core with acks=all; p99 <= 20 ms at
70 % of that rate; >= 2x the pydantic baseline. Issue 13 (``--vs-otel``, paired with
an OpenTelemetry Collector; ``bench/otel.py``): >= 1.5x OTel answering after the ack,
>= 1.0x OTel with batch + protobuf, in-process >= 1.5x OTel nop, p99 <= 2x OTel's.

Modules: ``ingest_servers.py`` (the legs' servers, child processes),
``loadgen.py`` (load generator), ``cpu_accounting.py`` (server CPU from /proc),
``ingest_legs.py`` (one leg, paired legs, summaries), ``pairing.py``,
``otel.py``, ``workers.py``, ``revisions.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from ingest_legs import bench_leg, median_by_leg, paired_main, tracing_summary, warm_broker
from ingest_servers import SERVERS, TOPIC, needs_kafka
from loadgen import EVENTS
from otel import vs_otel_main
from workers import workers_main

from streamslo.testing.kafka import KafkaBroker
from streamslo.testing.otlp_sink import OtlpSink
from streamslo.testing.stream import create_topic


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--legs", default="floor,pydantic,inprocess,pydantic_kafka,kafka")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--max-requests", type=int, default=200_000)
    p.add_argument("--kafka", help="use this broker instead of starting one")
    p.add_argument("--no-pin", action="store_true", help="do not pin server/load to CPUs 0/1")
    p.add_argument("--server", choices=SERVERS, default="uvicorn")
    p.add_argument("--rounds", type=int, default=1, help="repeat all legs (medians, paired ratios)")
    p.add_argument("--trace-ratio", type=float, default=0.01, help="sampling ratio of *_traced legs")
    p.add_argument("--paired", metavar="A,B",
                   help="serve legs A and B at once on one core (e.g. inprocess,inprocess_traced) "
                        "and compare their CPU per beacon, --rounds times")
    p.add_argument("--bsp-delay-ms", type=int, default=None,
                   help="OTEL_BSP_SCHEDULE_DELAY of *_traced legs (SDK default 5000)")
    p.add_argument("--vs-otel", action="store_true",
                   help="pair the collector with an OpenTelemetry Collector (bench/otel.py), --rounds times")
    args = p.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if not args.no_pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    legs = args.paired.split(",") if args.paired else args.legs.split(",")
    if args.vs_otel:
        legs = ["kafka", "inprocess"]
    if args.paired and len(legs) != 2:
        p.error("--paired takes exactly two legs, A,B")
    results: list[dict[str, Any]] = []
    broker, kafka, sink = None, args.kafka, None
    if any(leg.endswith("_traced") for leg in legs):
        sink = OtlpSink().start()
    try:
        if any(needs_kafka(leg) for leg in legs):
            if kafka is None:
                broker = KafkaBroker().start()
                kafka = broker.bootstrap
            create_topic(kafka, TOPIC, 4)
            warm_broker(kafka)
        if args.vs_otel:
            assert kafka is not None
            fields, rc = vs_otel_main(args, kafka), 0
            try:
                fields += workers_main(args, kafka)
            except RuntimeError as exc:  # inexact counts: no workers figure, but keep the pairs
                print(f"workers: stopped, {exc}")
                fields, rc = [*fields, "workers2_vs_1=nan"], 1
            print("RESULT " + " ".join([f"server={args.server}", f"concurrency={args.concurrency}",
                                        f"events_per_beacon={EVENTS}", *fields]))
            return rc
        if args.paired:
            fields = paired_main(args, kafka, sink.endpoint if sink is not None else None, sink)
            print("RESULT " + " ".join([f"server={args.server}", f"concurrency={args.concurrency}",
                                        f"events_per_beacon={EVENTS}", *fields]))
            return 0
        for rnd in range(args.rounds):
            for leg in legs:
                spans0 = len(sink.spans) if sink is not None else 0
                r = bench_leg(leg, args, kafka if needs_kafka(leg) else None,
                              sink.endpoint if sink is not None else None)
                r["round"] = rnd
                if leg.endswith("_traced") and sink is not None:
                    time.sleep(1.0)  # the server flushed on shutdown; let the sink finish decoding
                    r["spans"] = len(sink.spans) - spans0
                results.append(r)
    finally:
        if broker is not None:
            broker.stop()
        if sink is not None:
            sink.stop()
    print(f"\n{'leg':<17} {'beacons/s':>10} {'per CPU-s':>10} {'srv CPU':>8} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'@70% /s':>8} {'p50 ms':>7} {'p99 ms':>7}  statuses")
    for r in results:
        pk, lo = r["peak"], r["at70"]
        print(f"{r['leg']:<17} {pk['rps']:>10.0f} {pk['per_cpu_s']:>10.0f} {pk['cpu_util']:>8.2f} "
              f"{pk['p50']:>8.2f} {pk['p99']:>8.2f} {lo['rps']:>8.0f} {lo['p50']:>7.2f} "
              f"{lo['p99']:>7.2f}  {pk['statuses']} {lo['statuses']}")
    by = median_by_leg(results)
    fields = [f"server={args.server}", f"concurrency={args.concurrency}",
              f"events_per_beacon={EVENTS}", f"rounds={args.rounds}"]
    for leg, r in by.items():
        fields += [f"{leg}_rps={r['peak']['rps']:.0f}", f"{leg}_per_cpu_s={r['peak']['per_cpu_s']:.0f}",
                   f"{leg}_p99_ms={r['peak']['p99']:.2f}",
                   f"{leg}_p99_at70_ms={r['at70']['p99']:.2f}"]
    fields += tracing_summary(results, args)
    for base_leg, legs_vs in (("pydantic", ("floor", "inprocess", "kafka")), ("pydantic_kafka", ("kafka",))):
        base = by.get(base_leg)
        for leg in legs_vs:
            if base and leg in by:
                fields.append(f"{leg}_vs_{base_leg}={by[leg]['peak']['rps'] / base['peak']['rps']:.2f}")
                fields.append(f"{leg}_cpu_vs_{base_leg}="
                              f"{by[leg]['peak']['per_cpu_s'] / base['peak']['per_cpu_s']:.2f}")
    bad = sum(n for r in results for ph in ("peak", "at70")
              for s, n in r[ph]["statuses"].items() if s != 202)
    fields.append(f"non_202={bad}")
    print("RESULT " + " ".join(fields))
    return 0


if __name__ == "__main__":
    sys.exit(main())
