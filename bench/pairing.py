"""Paired load on two servers at once: CPU per request and p99 at 70 %, same moment, same core.

Use :func:`run_pair` when two servers of any kind (the collector, the
OpenTelemetry Collector, an older revision of the collector) must be compared
on a shared, noisy machine: both are loaded at the same time by half the
connections each, so whatever else runs hits both alike. Each side is a
:class:`Side`: a started server process, its port, a request source and the
status that means "accepted".

    a = Side("kafka", proc_a, port_a, Requests(), 202)
    b = Side("otel_sync", proc_b, port_b, OtlpRequests("json"), 200)
    res = run_pair([a, b], concurrency=64, seconds=5, max_requests=200_000)
    res[0]["per_cpu_s"] / res[1]["per_cpu_s"]

Phases: a 1 s warm-up; a closed loop (max rate and CPU per request of each);
optionally an open loop, both at 70 % of the *slower* side's max rate, for
p99 with queueing counted. ``accepted`` sums the accepted answers of every
phase, for the exact-count checks against what reached Kafka.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from cpu_accounting import cpu_seconds, thread_cpu_seconds
from loadgen import run_load


class RequestSource(Protocol):
    """Anything with ``next() -> bytes`` (a whole HTTP/1.1 request) and a count ``n``."""

    n: int

    def next(self) -> bytes: ...


@dataclass
class Side:
    """One server of a pair and how to load it."""

    name: str
    proc: Any  # subprocess.Popen
    port: int
    requests: RequestSource
    ok: int  # the status of an accepted request (202 for the collector, 200 for OTLP)
    accepted: int = 0
    other: dict[int, int] = field(default_factory=dict)

    def tally(self, statuses: dict[int, int]) -> None:
        for status, n in statuses.items():
            if status == self.ok:
                self.accepted += n
            else:
                self.other[status] = self.other.get(status, 0) + n


async def _together(sides: list[Side], conns: int, seconds: float, max_requests: int,
                    rate: float | None) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(
        run_load(s.port, conns, seconds, max_requests, rate, s.requests)
        for s in sides)))


def run_pair(sides: list[Side], *, concurrency: int, seconds: float, max_requests: int,
             at70: bool = False) -> list[dict[str, Any]]:
    """Load both sides at once; per side: rps, per_cpu_s, us_main, us_threads, p99 (and p99_at70)."""
    half = max(1, concurrency // 2)
    for s, r in zip(sides, asyncio.run(_together(sides, half, 1.0, 5_000, None)), strict=True):
        s.tally(r["statuses"])  # the warm-up's requests reached Kafka too
    cpu0 = [cpu_seconds(s.proc.pid) for s in sides]
    threads0 = [thread_cpu_seconds(s.proc.pid) for s in sides]
    results = asyncio.run(_together(sides, half, seconds, max_requests, None))
    for res, s, c0, t0 in zip(results, sides, cpu0, threads0, strict=True):
        s.tally(res["statuses"])
        cpu = cpu_seconds(s.proc.pid) - c0
        res["per_cpu_s"] = res["n"] / cpu if cpu > 0 else float("nan")
        res["cpu_util"] = cpu / res["elapsed"]
        main, other = thread_cpu_seconds(s.proc.pid)
        res["us_main"] = (main - t0[0]) / res["n"] * 1e6
        res["us_threads"] = (other - t0[1]) / res["n"] * 1e6
    if at70:
        rate = 0.7 * min(r["rps"] for r in results)
        for res, s, lo in zip(results, sides,
                              asyncio.run(_together(sides, half, seconds, max_requests, rate)),
                              strict=True):
            s.tally(lo["statuses"])
            res["rate_at70"] = rate
            res["p99_at70"] = lo["p99"]
            res["p50_at70"] = lo["p50"]
    return results
