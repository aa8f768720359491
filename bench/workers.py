"""``streamslo collector --workers N``: accepted requests per second at 1 and 2 workers.

Use :func:`workers_main` (``bench/bench_ingest.py --vs-otel`` runs it last) to
see how the real CLI scales with worker processes. Unlike the paired legs this
is a rate, not CPU per request, so the servers are not pinned: on this
2-core machine the load generator and the broker share the cores with the
workers, and a second worker can only use what they leave. Counts are exact:
the topic holds one beacon per 202, per run.

    fields = workers_main(args, kafka)   # ["workers1_rps=...", "workers2_rps=...", "workers2_vs_1=..."]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from loadgen import KEY, Requests, run_load
from otel import topic_counts

from streamslo.testing.ports import free_port, wait_for_http
from streamslo.testing.stream import create_topic


def start_collector(kafka: str, topic: str, workers: int, keys: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The real ``streamslo collector`` CLI with ``workers`` processes and no rate limit."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamslo.cli", "collector", "--kafka", kafka, "--topic", topic,
           "--port", str(port), "--workers", str(workers), "--keys", str(keys), "--rate-per-key", "0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_MULTIPROC"))}
    return subprocess.Popen(cmd, env=env), port


def one_run(kafka: str, workers: int, rnd: int, args: argparse.Namespace, keys: Path) -> float:
    """Closed-loop rate of one collector; raises if the topic does not hold every 202."""
    topic = f"workers{workers}-r{rnd}"
    create_topic(kafka, topic, 4)
    proc, port = start_collector(kafka, topic, workers, keys)
    accepted, other = 0, 0
    try:
        wait_for_http(f"http://127.0.0.1:{port}/readyz", proc)
        reqs = Requests()
        for seconds in (1.0, args.seconds):  # warm-up, then the measured phase
            res = asyncio.run(run_load(port, args.concurrency, seconds, args.max_requests, None, reqs))
            accepted += res["statuses"].get(202, 0)
            other += sum(n for s, n in res["statuses"].items() if s != 202)
    finally:
        proc.terminate()
        proc.wait(30)
    messages, beacons = topic_counts(kafka, topic, otlp=False)
    if beacons != accepted or other:
        raise RuntimeError(f"workers={workers}: {beacons} beacons for {accepted} 202s, {other} other")
    print(f"round {rnd} workers={workers}: {res['rps']:.0f} requests/s; counts exact: "
          f"{beacons} beacons ({messages} msgs) = {accepted} 202s")
    return float(res["rps"])


def workers_main(args: argparse.Namespace, kafka: str) -> list[str]:
    """Alternate 1 and 2 workers ``--rounds`` times; returns RESULT fields (median rates)."""
    rates: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="workers-") as tmp:
        keys = Path(tmp) / "keys"
        keys.write_text(KEY + "\n")
        for rnd in range(args.rounds):
            for workers in ((1, 2) if rnd % 2 == 0 else (2, 1)):
                rates[workers].append(one_run(kafka, workers, rnd, args, keys))
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"workers: 1 -> {one:.0f}/s, 2 -> {two:.0f}/s: x{two / one:.3f} "
          f"(rounds: {', '.join(f'{b / a:.3f}' for a, b in zip(rates[1], rates[2], strict=True))})")
    return [f"workers1_rps={one:.0f}", f"workers2_rps={two:.0f}", f"workers2_vs_1={two / one:.3f}"]
