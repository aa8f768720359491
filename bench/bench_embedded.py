"""Embedded freshness: how long from a beacon's POST until ``/metrics`` shows its event.

Starts ``streamslo run --demo`` (background traffic in every region) as a
subprocess per flush interval, then, ``--samples`` times: POSTs one probe
beacon (one ``first_frame`` event, ``kind="probe"``) and polls ``/metrics``
until ``streamslo_latency_seconds_count{kind="probe"}`` counts it. Each sample
starts at a random phase of the flush cycle. Baseline measured in the same
run: one ``/metrics`` scrape (the poll's own cost and resolution).

    python bench/bench_embedded.py                  # flush 0.5 s (default) and 1.0 s
    python bench/bench_embedded.py --samples 200 --flush 0.5

Target (issue 6): event -> /metrics p99 <= 2 s.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

from streamslo.testing.ports import free_port, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
REGION = "sa-east-1"
SERIES = re.compile(r'^streamslo_latency_seconds_count\{([^}]*)\} (\S+)$', re.M)


def probe_count(text: str) -> float:
    for labels, value in SERIES.findall(text):
        if f'region="{REGION}"' in labels and 'kind="probe"' in labels and 'sli="ttff"' in labels:
            return float(value)
    return 0.0


def measure(flush_s: float, samples: int, poll_s: float) -> dict[str, float]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "streamslo.cli", "run", "--demo", "--port", str(port),
            "--flush-interval", str(flush_s), "--log-level", "warning"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_http(f"{base}/healthz", proc)
        with httpx.Client(timeout=5) as client:
            time.sleep(2.0)  # let demo traffic reach a steady state
            scrape, fresh = [], []
            seen = probe_count(client.get(f"{base}/metrics").text)
            session = uuid.uuid4().hex
            for seq in range(1, samples + 1):
                time.sleep(random.uniform(0.0, flush_s))  # random phase against the flush timer
                now = time.time()
                beacon = {"v": 1, "session_id": session, "seq": seq, "sent_at": now, "region": REGION,
                          "sdk": "bench", "kind": "probe",
                          "events": [{"type": "first_frame", "ts": now, "value_ms": 120.0}]}
                start = time.perf_counter()
                assert client.post(f"{base}/v1/beacons", json=beacon).status_code == 202
                while True:
                    t0 = time.perf_counter()
                    count = probe_count(client.get(f"{base}/metrics").text)
                    scrape.append(time.perf_counter() - t0)
                    if count > seen:
                        fresh.append(time.perf_counter() - start)
                        seen = count
                        break
                    if time.perf_counter() - start > 10:
                        raise RuntimeError(f"event not visible after 10 s (flush {flush_s})")
                    time.sleep(poll_s)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    f = np.asarray(fresh)
    return {
        "flush_s": flush_s,
        "n": float(len(f)),
        "p50": float(np.percentile(f, 50)),
        "p99": float(np.percentile(f, 99)),
        "max": float(f.max()),
        "scrape_ms": statistics.median(scrape) * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=80)
    parser.add_argument("--flush", type=float, action="append", help="flush interval(s) in seconds")
    parser.add_argument("--poll", type=float, default=0.02, help="seconds between /metrics polls")
    args = parser.parse_args()
    flushes = args.flush or [0.5, 1.0]
    rows = [measure(f, args.samples, args.poll) for f in flushes]

    print(f"{'flush s':>8} {'samples':>8} {'p50 s':>7} {'p99 s':>7} {'max s':>7} {'scrape ms':>10} {'p50/flush':>10} {'p99/2s':>7}")
    for r in rows:
        print(f"{r['flush_s']:>8.2f} {r['n']:>8.0f} {r['p50']:>7.3f} {r['p99']:>7.3f} {r['max']:>7.3f} "
              f"{r['scrape_ms']:>10.2f} {r['p50'] / r['flush_s']:>10.2f} {r['p99'] / 2.0:>7.2f}")
    d = rows[0]
    print(f"RESULT flush_s={d['flush_s']:g} samples={d['n']:.0f} freshness_p50_s={d['p50']:.3f} "
          f"freshness_p99_s={d['p99']:.3f} p99_over_target={d['p99'] / 2.0:.3f} "
          f"p50_over_flush={d['p50'] / d['flush_s']:.2f} scrape_ms={d['scrape_ms']:.2f}"
          + "".join(f" p99_s_flush{r['flush_s']:g}={r['p99']:.3f}" for r in rows[1:]))
    return 0 if d["p99"] <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
