"""Soak: the real collector -> a real broker -> ``streamslo worker``, at 2x nominal for 4 minutes.

Run: ``python bench/soak.py [--minutes 4] [--multiplier 2] [--sample-s 20]``; the
documented 10-minute soak is ``--minutes 10 --sample-s 30``. Everything listens on
127.0.0.1 and stops by itself (broker, collector, worker are children). The exit
status is 0 only when the pipeline drained with nothing lost and nothing extra.

Nominal traffic is the default spec's documented traffic: what ``streamslo run --demo``
sends by default, 8 viewer sessions (one beacon each) per second in each of the spec's 4
regions, i.e. 32 beacons/s of about 3 events (a first frame or a failed start, then
Poisson(2) interactions; ``streamslo.demo.DemoTraffic``). The soak POSTs those beacons to a
``streamslo collector`` subprocess (``streamslo.testing.stream.Collector``), which produces to a
single-node KRaft broker (``streamslo.testing.kafka.KafkaBroker``, ``beacons`` with 4 partitions),
consumed by one ``streamslo worker`` subprocess (``streamslo.testing.stream.Worker``: stage 1 in
its child process, stage 2 and ``/metrics`` in the Faust process).

Every ``--sample-s`` it prints one row: beacons sent and acknowledged, RSS of the
collector, of the worker and of its stage-1 child (MB), the lag of stage 1 on ``beacons``
and of stage 2 on ``slo-partials`` (end offsets minus the groups' committed offsets; stage
1 commits once per cut, so up to a second of records shows as lag), and the number of
series on the worker's and the collector's ``/metrics``. RSS growth is the last sample
minus the first sample after ``--warmup-s``. After the traffic stops it waits (at most
``--drain-s``) for both lags to reach 0 and the worker's attempts and errors per region to
equal what the collector acknowledged, then prints::

    RESULT rss_growth_collector_mb=X rss_growth_worker_mb=X max_lag=X series=X ...

``rss_growth_worker_mb`` is the worker plus its stage-1 child; ``max_lag`` is stage 1's
lag on ``beacons`` in records, ``max_lag_partials`` stage 2's on ``slo-partials`` in
bundles; ``lost`` and ``extra`` are attempts missing from or counted beyond the
acknowledged beacons once drained.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from slo import conventions as c
from slo.spec import load_spec
from slo.stream.topics import STAGE1_GROUP
from streamslo.demo import DemoTraffic
from streamslo.testing.kafka import KafkaBroker
from streamslo.testing.stream import (
    Collector,
    Samples,
    Worker,
    create_topic,
    metric_sum,
    wait_until,
)

NOMINAL_BEACONS_PER_S_PER_REGION = 8.0  # streamslo run --demo's default (--demo-rate)
PARTITIONS = 4
MB = 1024 * 1024


def rss_mb(pid: int | None) -> float:
    """Resident set size of ``pid`` in MB (0 when it is gone)."""
    if pid is None:
        return 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / MB
    except OSError:
        pass
    return 0.0


@dataclass
class Sent:
    """What the collector acknowledged, per region: playback attempts and fatal errors."""

    statuses: Counter[int] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def count(self, beacon: dict[str, Any]) -> None:
        """Add one acknowledged demo beacon: an attempt unless a business refusal ends it
        (geo-blocked: not a playback attempt), an error if it holds a fatal error (a
        warning is not one)."""
        errors = [e for e in beacon["events"] if e["type"] == c.EVENT_ERROR]
        if not any(e.get("class") == c.ERROR_CLASS_BUSINESS for e in errors):
            self.attempts[beacon["region"]] += 1
        self.errors[beacon["region"]] += any(
            e.get("fatal") or e.get("class") == c.ERROR_CLASS_FATAL for e in errors)


class Lag:
    """Committed-offset lag of stage 1 on ``beacons`` and of stage 2 on ``slo-partials``."""

    def __init__(self, bootstrap: str) -> None:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)

    async def start(self) -> None:
        await self.admin.start()
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def of(self, group: str, topic: str) -> int:
        # list first: describing a missing topic would make the broker auto-create it
        if topic not in set(await self.admin.list_topics()):
            return 0
        (described,) = await self.admin.describe_topics([topic])
        parts = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        ends = await self.consumer.end_offsets(parts)
        try:
            committed = await self.admin.list_consumer_group_offsets(group)
        except KafkaError:  # the group has not committed yet
            committed = {}
        return int(sum(end - max(0, committed[tp].offset if tp in committed else 0)
                       for tp, end in ends.items()))


def series_count(port: int) -> int:
    """Sample lines on ``http://127.0.0.1:port/metrics`` (0 when unreachable)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    except httpx.HTTPError:
        return 0
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def counted(samples: Samples, regions: tuple[str, ...]) -> tuple[Counter[str], Counter[str]]:
    """The worker's cumulative attempts and errors per region."""
    attempts = Counter({r: int(metric_sum(samples, c.METRIC_ATTEMPTS, region=r)) for r in regions})
    errors = Counter({r: int(metric_sum(samples, c.METRIC_ERRORS, region=r)) for r in regions})
    return attempts, errors


HEADER = (f"{'t_s':>6}{'sent':>8}{'acked':>8}{'coll_MB':>9}{'worker_MB':>10}{'stage1_MB':>10}"
          f"{'lag_s1':>8}{'lag_s2':>8}{'series_w':>9}{'series_c':>9}")


async def sample(t0: float, sent: Sent, collector: Collector, worker: Worker, lag: Lag) -> dict[str, float]:
    """One row of the table (printed), as a dict."""
    samples = await asyncio.to_thread(worker.scrape)
    row = {
        "t": time.monotonic() - t0,
        "sent": sum(sent.statuses.values()), "acked": sent.statuses[202],
        "collector": rss_mb(collector.proc.pid if collector.proc else None),
        "worker": rss_mb(worker.pid), "stage1": rss_mb(worker.stage1_pid()),
        "lag1": await lag.of(STAGE1_GROUP, c.TOPIC_BEACONS),
        "lag2": await lag.of(c.FAUST_APP_ID, c.TOPIC_PARTIALS),
        "series_w": len(samples), "series_c": await asyncio.to_thread(series_count, collector.port),
    }
    print(f"{row['t']:>6.0f}{row['sent']:>8.0f}{row['acked']:>8.0f}{row['collector']:>9.1f}"
          f"{row['worker']:>10.1f}{row['stage1']:>10.1f}{row['lag1']:>8.0f}{row['lag2']:>8.0f}"
          f"{row['series_w']:>9.0f}{row['series_c']:>9.0f}", flush=True)
    return row


async def soak(args: argparse.Namespace, collector: Collector, worker: Worker, regions: tuple[str, ...],
               lag: Lag) -> list[dict[str, float]]:
    """Traffic for ``args.minutes``, sampled; then the drain. Returns the rows."""
    sent = Sent()
    rows: list[dict[str, float]] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{collector.port}", timeout=10) as client:

        stopping = asyncio.Event()
        inflight: list[dict[str, Any]] = []

        async def send(beacon: dict[str, Any]) -> int:
            if stopping.is_set():  # no new request once stopping: none is cut off unrecorded
                return 0
            inflight.append(beacon)
            try:
                status = (await client.post("/v1/beacons", json=beacon)).status_code
            except httpx.HTTPError:
                status = 0
            finally:
                inflight.remove(beacon)
            sent.statuses[status] += 1
            if status == 202:
                sent.count(beacon)
            return status

        demo = DemoTraffic(regions, send, beacons_per_s=NOMINAL_BEACONS_PER_S_PER_REGION * args.multiplier,
                           seed=20261201)
        traffic = asyncio.create_task(demo.run())
        print(HEADER, flush=True)
        t0 = time.monotonic()
        end = t0 + args.minutes * 60
        try:
            while time.monotonic() < end:
                await asyncio.sleep(min(args.sample_s, max(0.0, end - time.monotonic())))
                rows.append(await sample(t0, sent, collector, worker, lag))
        finally:
            stopping.set()
            for _ in range(150):  # the request in flight finishes (each one times out at 10 s)
                if not inflight:
                    break
                await asyncio.sleep(0.1)
            traffic.cancel()
    drain_end = time.monotonic() + args.drain_s
    while True:
        got = counted(await asyncio.to_thread(worker.scrape), regions)
        lags = (await lag.of(STAGE1_GROUP, c.TOPIC_BEACONS), await lag.of(c.FAUST_APP_ID, c.TOPIC_PARTIALS))
        if (lags == (0, 0) and got == (sent.attempts, sent.errors)) or time.monotonic() > drain_end:
            break
        await asyncio.sleep(2)
    print("drained:" if time.monotonic() <= drain_end else f"NOT drained after {args.drain_s:g} s:", flush=True)
    last = await sample(t0, sent, collector, worker, lag)
    last.update(drained=float(time.monotonic() <= drain_end), statuses_non_202=sum(
        n for s, n in sent.statuses.items() if s != 202))
    last["lost"] = float(sum((sent.attempts - got[0]).values()))
    last["extra"] = float(sum((got[0] - sent.attempts).values()))
    rows.append(last)
    return rows


def _worker_mb(row: dict[str, float]) -> float:
    return row["worker"] + row["stage1"]


def result(rows: list[dict[str, float]], warmup_s: float, multiplier: float, regions: int) -> str:
    """The RESULT line: growth from the first row after ``warmup_s`` to the last row with traffic."""
    base = next((r for r in rows if r["t"] >= warmup_s), rows[0])
    last_traffic = rows[-2] if len(rows) > 1 else rows[-1]
    final = rows[-1]
    figures = {
        "rss_growth_collector_mb": last_traffic["collector"] - base["collector"],
        "rss_growth_worker_mb": _worker_mb(last_traffic) - _worker_mb(base),
        "max_lag": max(r["lag1"] for r in rows[:-1]),
        "max_lag_partials": max(r["lag2"] for r in rows[:-1]),
        "series": final["series_w"],
        "series_collector": final["series_c"],
        "rss_collector_mb": last_traffic["collector"], "rss_worker_mb": _worker_mb(last_traffic),
        "beacons_per_s": final["acked"] / max(last_traffic["t"], 1e-9),
        "nominal_beacons_per_s": NOMINAL_BEACONS_PER_S_PER_REGION * regions, "multiplier": multiplier,
        "acked": final["acked"], "non_202": final["statuses_non_202"],
        "lost": final["lost"], "extra": final["extra"], "drained": final["drained"],
        "minutes": last_traffic["t"] / 60,
    }
    return "RESULT " + " ".join(f"{k}={v:.1f}" if isinstance(v, float) and v % 1 else f"{k}={v:g}"
                                for k, v in figures.items())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--minutes", type=float, default=4.0, help="traffic duration (default 4)")
    ap.add_argument("--multiplier", type=float, default=2.0, help="times the nominal rate (default 2)")
    ap.add_argument("--sample-s", type=float, default=20.0, help="seconds between rows (default 20)")
    ap.add_argument("--warmup-s", type=float, default=60.0, help="RSS growth is measured from here")
    ap.add_argument("--drain-s", type=float, default=120.0, help="max wait for lag 0 and exact totals")
    args = ap.parse_args(argv)
    spec, _ = load_spec()
    regions = tuple(spec.regions)
    rate = NOMINAL_BEACONS_PER_S_PER_REGION * args.multiplier * len(regions)
    print(f"soak: {args.minutes:g} min at {args.multiplier:g}x nominal = {rate:g} beacons/s "
          f"({len(regions)} regions), sampled every {args.sample_s:g} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="streamslo-soak-") as tmp:
        broker = KafkaBroker().start()
        worker = collector = None
        try:
            create_topic(broker.bootstrap, c.TOPIC_BEACONS, PARTITIONS)
            worker = Worker(broker.bootstrap, Path(tmp), "soak").start()
            wait_until(lambda: bool(worker.scrape()) and worker.stage1_pid() is not None, 120,
                       "worker /metrics and its stage-1 child")
            collector = Collector(broker.bootstrap, Path(tmp)).start()
            rows = asyncio.run(_run(args, collector, worker, regions, broker.bootstrap))
            print(result(rows, args.warmup_s, args.multiplier, len(regions)))
        finally:
            for proc in (collector, worker):
                if proc is not None:
                    proc.stop()
            broker.stop()
    final = rows[-1]
    return 0 if final["drained"] and final["lost"] == 0 and final["extra"] == 0 else 1


async def _run(args: argparse.Namespace, collector: Collector, worker: Worker, regions: tuple[str, ...],
               bootstrap: str) -> list[dict[str, float]]:
    lag = Lag(bootstrap)
    await lag.start()
    try:
        return await soak(args, collector, worker, regions, lag)
    finally:
        await lag.stop()


if __name__ == "__main__":
    raise SystemExit(main())
