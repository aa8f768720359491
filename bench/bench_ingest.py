"""Ingest throughput and latency: this collector vs a FastAPI + pydantic baseline, one run.

Each leg starts a server *process* (uvicorn, uvloop + httptools, 1 worker,
pinned to CPU 0) and drives it from this process (pinned to CPU 1) with a
loopback HTTP/1.1 keep-alive load generator written on raw asyncio
protocols (cheap enough to saturate one server core). Traffic goes to
127.0.0.1 only and every phase is bounded by a request count and a time.

Legs (20-event beacons, unique (session_id, seq) per request):

- ``floor``: a raw ASGI app that reads the body and answers 202 (uvicorn's own cost);
- ``pydantic``: FastAPI route with a pydantic body model, answering 202 (the baseline);
- ``inprocess``: this collector with the InProcessExporter (no-op sink);
- ``kafka``: this collector producing to a real broker (acks=all, idempotent,
  librdkafka), started with ``scripts.kafka.KafkaBroker``; topic with 4
  partitions, warmed with a throwaway burst first;
- ``pydantic_kafka``: the baseline route producing each beacon with aiokafka
  ``send_and_wait`` (same producer settings): the baseline for the Kafka leg;
- ``inprocess_traced``, ``kafka_traced``: the same with tracing on
  (``OTEL_TRACES_SAMPLER=parentbased_traceidratio``, ratio ``--trace-ratio``,
  default 1 %), exporting OTLP/HTTP to ``tests/otlp_sink.py`` running in this
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
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if os.environ.get("BENCH_SRC"):  # a leg "kafka@REV": collector/slo/streamslo as of REV (see checkout())
    sys.path.insert(0, os.environ["BENCH_SRC"])
KEY = "bench-key-0123456789"
TOPIC = "bench-beacons"
EVENTS = 20


# --- servers (run in a child process) -----------------------------------------

class PydEvent(BaseModel):
    type: Literal["first_frame", "interaction", "error"]
    ts: float
    value_ms: float | None = None
    name: str | None = None
    code: str | None = None
    fatal: bool = False


class PydBeacon(BaseModel):
    v: Literal[1]
    session_id: str
    seq: int
    sent_at: float
    region: str = ""
    sdk: str = ""
    kind: Literal["rum", "probe"] = "rum"
    events: list[PydEvent]


def pydantic_app(kafka: str | None = None) -> Any:
    """The baseline: a FastAPI route with a pydantic body model; with ``kafka``, it also
    produces the beacon the straightforward way (aiokafka ``send_and_wait``, same producer
    settings as the collector: acks=all, idempotent, lz4, 5 ms linger)."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI

    producer: Any = None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        nonlocal producer
        if kafka:
            from aiokafka import AIOKafkaProducer

            producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all", enable_idempotence=True,
                                        compression_type="lz4", linger_ms=5)
            await producer.start()
        yield
        if producer is not None:
            await producer.stop()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/beacons", status_code=202)
    async def ingest(beacon: PydBeacon) -> dict[str, Any]:
        if producer is not None:
            await producer.send_and_wait(TOPIC, beacon.model_dump_json().encode(),
                                         key=beacon.session_id.encode())
        return {"status": "accepted", "events": len(beacon.events)}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app


async def floor_app(scope: Any, receive: Any, send: Any) -> None:
    """Raw ASGI: read the body, answer 202. The cost of uvicorn + HTTP alone."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    status = 202 if scope["method"] == "POST" else 200  # GET /readyz: ready
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", b"2"), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


def collector_app(kafka: str | None) -> Any:
    from collector.app import create_app
    from collector.config import CollectorConfig
    from collector.exporters import InProcessExporter, KafkaExporter

    cfg = CollectorConfig(regions=("eu-west-1", "us-east-1"), keys=frozenset({KEY}), rate_per_key=0)
    topic = os.environ.get("BENCH_TOPIC", TOPIC)  # --vs-otel: a fresh topic per round, for exact counts
    exporter = KafkaExporter(kafka, topic) if kafka else InProcessExporter(lambda b: None)
    return create_app(cfg, exporter)


def needs_kafka(leg: str) -> bool:
    return leg.startswith("kafka") or leg == "pydantic_kafka"


def make_app(leg: str, kafka: str | None) -> Any:
    if leg == "floor":
        return floor_app
    if leg.startswith("pydantic"):
        return pydantic_app(kafka if leg == "pydantic_kafka" else None)
    # Tracing (the *_traced legs) is set up by the app's lifespan from the OTEL_* environment.
    return collector_app(kafka if leg.startswith("kafka") else None)


def granian_factory() -> Any:
    """Import target for granian (it loads the app by name in its worker)."""
    return make_app(os.environ["BENCH_LEG"], os.environ.get("BENCH_KAFKA") or None)


def serve(leg: str, port: int, kafka: str | None, pin: bool, server: str) -> None:
    if pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})  # inherited by granian's worker and threads
    if server.startswith("granian"):
        from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes, TaskImpl
        from granian.log import LogLevels
        from granian.server import Server

        os.environ["BENCH_LEG"], os.environ["BENCH_KAFKA"] = leg, kafka or ""
        # "granian-st": HTTP/1 only, single-threaded runtime, Rust task implementation.
        tuned: dict[str, Any] = ({"http": HTTPModes.http1, "runtime_mode": RuntimeModes.st,
                                  "task_impl": TaskImpl.rust} if server == "granian-st" else {})
        Server("bench.bench_ingest:granian_factory", address="127.0.0.1", port=port,
               interface=Interfaces.ASGI, workers=1, loop=Loops.uvloop, factory=True,
               log_level=LogLevels.warning, working_dir=ROOT, **tuned).serve()
        return
    import uvicorn

    options: dict[str, Any] = {"loop": "uvloop", "http": "httptools", "access_log": False,
                               "server_header": False, "date_header": False}
    if leg in ("inprocess", "kafka", "inprocess_traced", "kafka_traced"):
        try:  # as `streamslo collector` runs it (at this leg's revision, for a leg "kafka@REV")
            from collector.cli import UVICORN_OPTIONS
        except ImportError:
            pass
        else:
            options = UVICORN_OPTIONS
    uvicorn.run(make_app(leg, kafka), host="127.0.0.1", port=port, log_level="warning", **options)


# --- load generator -------------------------------------------------------------

class Requests:
    """Unique 20-event beacons as ready-to-write HTTP/1.1 requests."""

    def __init__(self) -> None:
        now = time.time()
        events = ",".join(
            f'{{"type":"{"first_frame" if i % 4 == 0 else "interaction"}","ts":{now - 5 + i * 0.1:.3f},'
            f'"value_ms":{50 + i * 7.5}}}' for i in range(EVENTS))
        self._prefix = b'{"v":1,"session_id":"bench-'
        self._middle = b'","seq":'
        self._suffix = (f',"sent_at":{now:.3f},"region":"eu-west-1","sdk":"bench/1",'
                        f'"kind":"rum","events":[{events}]}}').encode()
        self._head = (b"POST /v1/beacons HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nX-Ingest-Key: " + KEY.encode() +
                      b"\r\nContent-Length: ")
        self.n = 0

    def next(self) -> bytes:
        self.n += 1
        body = b"%s%d%s%d%s" % (self._prefix, self.n % 997, self._middle, self.n, self._suffix)
        return b"%s%d\r\n\r\n%s" % (self._head, len(body), body)


class Conn(asyncio.Protocol):
    """One keep-alive connection; ``request()`` resolves with the status code."""

    def __init__(self) -> None:
        self.buf = b""
        self.fut: asyncio.Future[int] | None = None
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].lower()
        i = head.find(b"content-length:")
        length = int(head[i + 15:head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0 else None]) if i >= 0 else 0
        if len(self.buf) < end + 4 + length:
            return
        status = int(self.buf[9:12])
        self.buf = self.buf[end + 4 + length:]
        if self.fut is not None and not self.fut.done():
            self.fut.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(ConnectionError("closed"))

    async def request(self, data: bytes) -> int:
        self.fut = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.fut


async def run_load(port: int, concurrency: int, seconds: float, max_requests: int,
                   rate: float | None, reqs: Requests) -> dict[str, Any]:
    """Closed loop (rate None) or open loop at ``rate``/s; returns rate and latency figures."""
    loop = asyncio.get_running_loop()
    conns = [(await loop.create_connection(Conn, "127.0.0.1", port))[1] for _ in range(concurrency)]
    lat: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter()
    deadline = start + seconds
    counter = iter(range(max_requests))

    async def worker(conn: Conn) -> None:
        for k in counter:
            if rate is None:
                t0 = time.perf_counter()
            else:
                t0 = start + k / rate  # scheduled time: queueing delay counts
                wait = t0 - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
            if t0 > deadline:
                return
            status = await conn.request(reqs.next())
            lat.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - start
    for c in conns:
        c.transport.close()
    a = np.array(lat) * 1000.0
    return {"n": len(lat), "rps": len(lat) / elapsed, "elapsed": elapsed, "p50": float(np.percentile(a, 50)),
            "p99": float(np.percentile(a, 99)), "statuses": statuses}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` and its live descendants (Linux /proc)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    tree, total = {pid}, 0.0
    for _ in range(4):  # a server forks at most a couple of levels deep
        tree |= {p for p, (ppid, _) in stats.items() if ppid in tree}
    total = sum(stats[p][1] for p in tree if p in stats)
    return total / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> tuple[float, float]:
    """(main thread, all other threads) CPU seconds of process ``pid`` (Linux /proc)."""
    main = other = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        if int(task.name) == pid:
            main += cpu
        else:
            other += cpu
    return main, other


def measured(pid: int, phase: Any) -> dict[str, Any]:
    """Run a load phase and add the server's beacons per CPU-second (robust to a shared machine)."""
    cpu0 = cpu_seconds(pid)
    result: dict[str, Any] = asyncio.run(phase)
    cpu = cpu_seconds(pid) - cpu0
    result["per_cpu_s"] = result["n"] / cpu if cpu > 0 else float("nan")
    result["cpu_util"] = cpu / result["elapsed"]
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("server not ready")


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
    proc, port = start_server(leg, args, kafka, otlp)
    try:
        wait_ready(port, proc)
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
    from bench.revisions import checkout, split_leg

    port = free_port()
    leg, rev, server = split_leg(leg)
    env = {**(env or {}), **({"BENCH_SRC": checkout(rev)} if rev else {})}
    cmd = [sys.executable, __file__, "--serve", leg, "--port", str(port), "--server", server or args.server]
    if args.no_pin:
        cmd.append("--no-pin")
    if kafka:
        cmd += ["--kafka", kafka]
    return subprocess.Popen(cmd, cwd=ROOT, env={**server_env(leg, args, otlp), **(env or {})}), port


def bench_pair(legs: tuple[str, str], args: argparse.Namespace, kafka: str | None,
               otlp: str | None) -> dict[str, Any]:
    """Both legs' servers at once, on the same core, each loaded by half the connections.

    Whatever else the machine does hits both servers alike, so the ratio of
    their CPU per beacon is far steadier than two legs run one after the other.
    """
    procs = [start_server(leg, args, kafka if needs_kafka(leg) else None, otlp) for leg in legs]
    try:
        for proc, port in procs:
            wait_ready(port, proc)
        reqs = [Requests() for _ in procs]
        half = max(1, args.concurrency // 2)

        async def together(seconds: float, max_requests: int) -> list[dict[str, Any]]:
            return list(await asyncio.gather(*(
                run_load(port, half, seconds, max_requests, None, r)
                for (_, port), r in zip(procs, reqs, strict=True))))

        asyncio.run(together(1.0, 5_000))  # warm-up
        cpu0 = [cpu_seconds(proc.pid) for proc, _ in procs]
        threads0 = [thread_cpu_seconds(proc.pid) for proc, _ in procs]
        results = asyncio.run(together(args.seconds, args.max_requests))
        for res, (proc, _), c0, t0 in zip(results, procs, cpu0, threads0, strict=True):
            cpu = cpu_seconds(proc.pid) - c0
            res["per_cpu_s"] = res["n"] / cpu if cpu > 0 else float("nan")
            res["cpu_util"] = cpu / res["elapsed"]
            main, other = thread_cpu_seconds(proc.pid)
            # Where the CPU went: the event loop's thread vs the others (span export, librdkafka).
            res["us_main"] = (main - t0[0]) / res["n"] * 1e6
            res["us_threads"] = (other - t0[1]) / res["n"] * 1e6
        return {"legs": legs, "results": results, "requests": [r.n for r in reqs]}
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
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
        r = bench_pair((b, a) if flip else (a, b), args, kafka, otlp)
        ra, rb = r["results"][::-1] if flip else r["results"]  # works for an A,A sanity check too
        ratio = ra["per_cpu_s"] / rb["per_cpu_s"]
        ratios.append(ratio)
        if sink is not None:
            time.sleep(1.0)
            spans += len(sink.spans) - spans0
        print(f"{rnd:>5} {ra['rps']:>16.0f} {ra['per_cpu_s']:>10.0f} {rb['rps']:>22.0f} "
              f"{rb['per_cpu_s']:>10.0f} {ratio:>32.3f}   CPU us/beacon main+threads: "
              f"{ra['us_main']:.0f}+{ra['us_threads']:.0f} vs {rb['us_main']:.0f}+{rb['us_threads']:.0f}")
        bad = sum(n for res in r["results"] for st, n in res["statuses"].items() if st != 202)
        if bad:
            print(f"      non-202 answers: {bad}")
    med = statistics.median(ratios)
    print(f"median CPU per beacon {b} / {a}: {med:.3f} (rounds: {', '.join(f'{x:.3f}' for x in ratios)})")
    return [f"paired={a},{b}", f"rounds={args.rounds}", f"seconds={args.seconds}",
            f"{b}_vs_{a}_cpu_ratio={med:.3f}", f"{b}_vs_{a}_cpu_overhead_pct={(med - 1) * 100:.1f}",
            f"{b}_vs_{a}_cpu_ratio_min={min(ratios):.3f}", f"{b}_vs_{a}_cpu_ratio_max={max(ratios):.3f}",
            f"spans={spans}"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--legs", default="floor,pydantic,inprocess,pydantic_kafka,kafka")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--max-requests", type=int, default=200_000)
    p.add_argument("--serve", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--kafka", help="use this broker instead of starting one")
    p.add_argument("--no-pin", action="store_true", help="do not pin server/load to CPUs 0/1")
    p.add_argument("--server", choices=("uvicorn", "granian", "granian-st"), default="uvicorn")
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
    if args.serve:
        serve(args.serve, args.port, args.kafka, not args.no_pin, args.server)
        return 0
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
        from tests.otlp_sink import OtlpSink

        sink = OtlpSink().start()
    try:
        if any(needs_kafka(leg) for leg in legs):
            from tests.fixtures_kafka import create_topic

            if kafka is None:
                from scripts.kafka import KafkaBroker

                broker = KafkaBroker().start()
                kafka = broker.bootstrap
            create_topic(kafka, TOPIC, 4)
            warm_broker(kafka)
        if args.vs_otel:
            from bench.otel import vs_otel_main
            from bench.workers import workers_main

            assert kafka is not None
            fields = [*vs_otel_main(args, kafka), *workers_main(args, kafka)]
            print("RESULT " + " ".join([f"server={args.server}", f"concurrency={args.concurrency}",
                                        f"events_per_beacon={EVENTS}", *fields]))
            return 0
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


if __name__ == "__main__":
    sys.exit(main())
