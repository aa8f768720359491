"""The legs of ``bench/bench_ingest.py``: start a leg's server, load it, summarise the rounds.

Use :func:`bench_leg` for one leg alone (closed loop, then open loop at 70 %
of its max rate), :func:`paired_main` for ``--paired A,B`` (both servers at
once, ``pairing.run_pair``), and :func:`median_by_leg` / :func:`tracing_summary`
for the RESULT fields over ``--rounds``. Servers are ``ingest_servers.py``
children; only their CPU is counted (``cpu_accounting``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ingest_servers import TOPIC, needs_kafka
from loadgen import Requests, measured, run_load
from pairing import Side, run_pair
from revisions import checkout, split_leg

from streamslo.testing.ports import free_port, wait_for_http

SERVERS = Path(__file__).resolve().parent / "ingest_servers.py"


def warm_broker(bootstrap: str, messages: int = 20_000) -> None:
    """Produce a throwaway burst: a just-started broker (cold JIT) answers slowly, and
    librdkafka burns CPU while it does, which would be charged to the first leg."""
    from aiokafka import AIOKafkaProducer

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            value = Requests().next()
            for i in range(0, messages, 1000):
                futs = [await producer.send(TOPIC, value, key=b"%d" % (i + k)) for k in range(1000)]
                await asyncio.gather(*futs)
        finally:
            await producer.stop()

    asyncio.run(go())


def server_env(leg: str, args: argparse.Namespace, otlp: str | None) -> dict[str, str]:
    """The server's environment: no OTEL_* at all, or tracing at ``--trace-ratio`` to ``otlp``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    if leg.endswith("_traced"):
        assert otlp is not None
        env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
                    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                    "OTEL_TRACES_SAMPLER_ARG": str(args.trace_ratio)})
        if args.bsp_delay_ms is not None:
            env["OTEL_BSP_SCHEDULE_DELAY"] = str(args.bsp_delay_ms)
    return env


def bench_leg(leg: str, args: argparse.Namespace, kafka: str | None,
              otlp: str | None = None) -> dict[str, Any]:
    """One leg alone: warm-up, closed loop (max rate), open loop at 70 % of it."""
    proc, port = start_server(leg, args, kafka, otlp)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/readyz", proc)
        reqs = Requests()
        asyncio.run(run_load(port, args.concurrency, 1.0, 5_000, None, reqs))  # warm-up
        peak = measured(proc.pid, run_load(port, args.concurrency, args.seconds,
                                           args.max_requests, None, reqs))
        at70 = measured(proc.pid, run_load(port, args.concurrency, args.seconds,
                                           args.max_requests, 0.7 * peak["rps"], reqs))
        return {"leg": leg, "peak": peak, "at70": at70, "requests": reqs.n}
    finally:
        proc.terminate()
        proc.wait(20)


def start_server(leg: str, args: argparse.Namespace, kafka: str | None,
                 otlp: str | None, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """The server of ``leg`` (``kafka@REV:granian`` style, see ``revisions.py``) on a free port."""
    port = free_port()
    leg, rev, server = split_leg(leg)
    env = {**(env or {}), **({"BENCH_SRC": checkout(rev)} if rev else {})}
    cmd = [sys.executable, str(SERVERS), leg, "--port", str(port), "--server", server or args.server]
    if args.no_pin:
        cmd.append("--no-pin")
    if kafka:
        cmd += ["--kafka", kafka]
    return subprocess.Popen(cmd, env={**server_env(leg, args, otlp), **(env or {})}), port


def bench_pair(legs: tuple[str, str], args: argparse.Namespace, kafka: str | None,
               otlp: str | None) -> list[dict[str, Any]]:
    """Both legs' servers at once on the server core, each loaded by half the connections
    (``pairing.run_pair``): whatever else the machine does hits both alike."""
    started = [start_server(leg, args, kafka if needs_kafka(leg) else None, otlp) for leg in legs]
    try:
        for proc, port in started:
            wait_for_http(f"http://127.0.0.1:{port}/readyz", proc)
        sides = [Side(leg, proc, port, Requests(), 202) for leg, (proc, port) in zip(legs, started, strict=True)]
        return run_pair(sides, concurrency=args.concurrency, seconds=args.seconds,
                        max_requests=args.max_requests)
    finally:
        for proc, _ in started:
            proc.terminate()
        for proc, _ in started:
            proc.wait(20)


def paired_main(args: argparse.Namespace, kafka: str | None, otlp: str | None,
                sink: Any) -> list[str]:
    """``--paired A,B``: rounds of :func:`bench_pair`; prints a table, returns RESULT fields."""
    a, b = args.paired.split(",")
    ratios: list[float] = []
    print(f"\npaired: {a} and {b} served at once on one core, {args.concurrency // 2} connections each")
    print(f"{'round':>5} {a + ' /s':>16} {'per CPU-s':>10} {b + ' /s':>22} {'per CPU-s':>10} "
          f"{'CPU/beacon ' + b + ' / ' + a:>32}")
    spans = 0
    for rnd in range(args.rounds):
        flip = rnd % 2 == 1  # alternate which server starts first
        spans0 = len(sink.spans) if sink is not None else 0
        results = bench_pair((b, a) if flip else (a, b), args, kafka, otlp)
        ra, rb = results[::-1] if flip else results  # works for an A,A sanity check too
        ratio = ra["per_cpu_s"] / rb["per_cpu_s"]
        ratios.append(ratio)
        if sink is not None:
            time.sleep(1.0)
            spans += len(sink.spans) - spans0
        print(f"{rnd:>5} {ra['rps']:>16.0f} {ra['per_cpu_s']:>10.0f} {rb['rps']:>22.0f} "
              f"{rb['per_cpu_s']:>10.0f} {ratio:>32.3f}   CPU us/beacon main+threads: "
              f"{ra['us_main']:.0f}+{ra['us_threads']:.0f} vs {rb['us_main']:.0f}+{rb['us_threads']:.0f}")
        bad = sum(n for res in results for st, n in res["statuses"].items() if st != 202)
        if bad:
            print(f"      non-202 answers: {bad}")
    med = statistics.median(ratios)
    print(f"median CPU per beacon {b} / {a}: {med:.3f} (rounds: {', '.join(f'{x:.3f}' for x in ratios)})")
    return [f"paired={a},{b}", f"rounds={args.rounds}", f"seconds={args.seconds}",
            f"{b}_vs_{a}_cpu_ratio={med:.3f}", f"{b}_vs_{a}_cpu_overhead_pct={(med - 1) * 100:.1f}",
            f"{b}_vs_{a}_cpu_ratio_min={min(ratios):.3f}", f"{b}_vs_{a}_cpu_ratio_max={max(ratios):.3f}",
            f"spans={spans}"]


def median_by_leg(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per leg, the median of every figure over its rounds (one round: that round's figures)."""
    by: dict[str, dict[str, Any]] = {}
    for leg in dict.fromkeys(r["leg"] for r in results):
        rs = [r for r in results if r["leg"] == leg]
        by[leg] = {ph: {k: statistics.median(r[ph][k] for r in rs)
                        for k in ("rps", "per_cpu_s", "p99", "p50")} for ph in ("peak", "at70")}
    return by


def tracing_summary(results: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    """Paired per-round CPU overhead of each *_traced leg against its untraced twin; prints a table."""
    fields: list[str] = []
    for traced in dict.fromkeys(r["leg"] for r in results if r["leg"].endswith("_traced")):
        plain = traced.removesuffix("_traced")
        pairs = [(p, t) for p in results for t in results
                 if p["leg"] == plain and t["leg"] == traced and p["round"] == t["round"]]
        if not pairs:
            continue
        # CPU per beacon, traced / untraced, in the same round: robust to a shared machine.
        cpu = [p["peak"]["per_cpu_s"] / t["peak"]["per_cpu_s"] for p, t in pairs]
        # Noise on a shared machine only adds CPU time: the best rounds are the cleanest pair.
        best = max(p["peak"]["per_cpu_s"] for p, _ in pairs) / max(t["peak"]["per_cpu_s"] for _, t in pairs)
        rps = [t["peak"]["rps"] / p["peak"]["rps"] for p, t in pairs]
        spans = sum(t["spans"] for _, t in pairs)
        per_request = 2 if plain == "kafka" else 1  # ingest (+ produce on Kafka)
        expected = args.trace_ratio * per_request * sum(t["requests"] for _, t in pairs)
        print(f"\ntracing {traced} vs {plain} (ratio {args.trace_ratio}): CPU per beacon "
              f"x{statistics.median(cpu):.3f} (rounds: {', '.join(f'{x:.3f}' for x in cpu)}; "
              f"best round of each x{best:.3f}), "
              f"peak rate x{statistics.median(rps):.3f}; spans received {spans}, "
              f"expected about {expected:.0f}")
        fields += [f"{traced}_cpu_ratio={statistics.median(cpu):.3f}",
                   f"{traced}_cpu_overhead_pct={(statistics.median(cpu) - 1) * 100:.1f}",
                   f"{traced}_best_cpu_ratio={best:.3f}",
                   f"{traced}_rps_ratio={statistics.median(rps):.3f}",
                   f"{traced}_spans={spans}", f"{traced}_spans_expected={expected:.0f}"]
    return fields
