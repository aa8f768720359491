"""Kafka-side helpers for tests and benchmarks: topics, beacons in, workers and collectors.

Use :func:`create_topic` and :func:`produce_beacons` to prepare input,
:class:`Worker` / :class:`Collector` to run ``streamslo worker`` /
``streamslo collector`` as subprocesses on free 127.0.0.1 ports, and
:meth:`Worker.scrape` with :func:`metric_sum` to read what they counted.

    create_topic(broker.bootstrap, c.TOPIC_BEACONS, 4)
    asyncio.run(produce_beacons(broker.bootstrap, records))
    worker = Worker(broker.bootstrap, tmp_path).start()
    wait_until(lambda: metric_sum(worker.scrape(), c.METRIC_ATTEMPTS) == n, 60, "all counted")
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from slo import conventions as c
from streamslo.testing.ports import free_port, wait_for_http


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    """Create ``name`` with ``partitions`` partitions (no-op when it exists)."""

    async def go() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            if name not in set(await admin.list_topics()):
                await admin.create_topics([NewTopic(name, partitions, 1)])
        finally:
            await admin.close()

    asyncio.run(go())


async def produce_beacons(
    bootstrap: str,
    values: Iterable[tuple[bytes, bytes]],
    headers: Iterable[list[tuple[str, bytes]]] | None = None,
) -> int:
    """Produce ``(key, value)`` pairs to ``beacons`` (acks=all, idempotent); return the count.

    ``headers``, when given, holds one header list per message (empty = none),
    as the traced collector sends them.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    n = 0
    try:
        futures = []
        pairs: Iterable[tuple[tuple[bytes, bytes], list[tuple[str, bytes]] | None]] = (
            zip(values, headers, strict=True) if headers is not None else ((kv, None) for kv in values)
        )
        for (key, value), h in pairs:
            futures.append(await producer.send(c.TOPIC_BEACONS, value, key=key, headers=h or None))
            n += 1
            if len(futures) >= 5000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return n


class Worker:
    """``streamslo worker`` as a subprocess on 127.0.0.1 (real Faust, real Kafka)."""

    def __init__(self, bootstrap: str, workdir: Path, name: str = "w1", *extra: str) -> None:
        self.bootstrap = bootstrap
        self.workdir = workdir
        self.name = name
        self.port = free_port()
        self.extra = list(extra)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Worker:
        self.starts += 1
        log = open(self.workdir / f"{self.name}.log", "ab")  # noqa: SIM115 (child owns it)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamslo.cli", "worker", "--kafka", self.bootstrap,
             "--web-port", str(self.port), "--data-dir", str(self.workdir / self.name),
             "--worker-id", self.name, "--loglevel", "info", *self.extra],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        return self

    def kill(self) -> None:
        """SIGKILL (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stage1_pid(self) -> int | None:
        """Pid of the stage-1 child process (multiprocessing spawn), None if not running."""
        if self.proc is None:
            return None
        for pid in children(self.proc.pid):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"multiprocessing.spawn" in b" ".join(cmdline) and not any(b"resource_tracker" in a for a in cmdline):
                return pid
        return None

    def notable_lines(self, n: int = 60) -> str:
        """The last ``n`` log lines of stage 1, stage 2 and every warning or error."""
        path = self.workdir / f"{self.name}.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        keep = [ln for ln in lines if any(k in ln for k in ("stage1", "stage2", "WARN", "ERROR", "CRIT"))]
        return "\n".join(keep[-n:])

    def log_tail(self, n: int = 40) -> str:
        path = self.workdir / f"{self.name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""

    def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """``/metrics`` as {(sample name, labels): value}; empty when not reachable."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        except httpx.HTTPError:
            return {}
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out


def children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from /proc; Linux only)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def metric_sum(samples: Samples, name: str,
               **labels: str) -> float:
    """Sum of every sample called ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= lab)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.5) -> float:
    """Poll ``predicate`` until true; return seconds waited; AssertionError on timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic() - t0
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Collector:
    """``streamslo collector`` as a subprocess on a fixed port (survives kill -9 and restart)."""

    def __init__(self, bootstrap: str, workdir: Path) -> None:
        self.bootstrap = bootstrap
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Collector:
        log = open(self.workdir / "collector.log", "ab")  # noqa: SIM115 (child owns it)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamslo.cli", "collector", "--kafka", self.bootstrap,
             "--port", str(self.port), "--no-require-key", "--rate-per-key", "0"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        wait_for_http(f"http://127.0.0.1:{self.port}/readyz", self.proc, timeout=timeout,
                      log=self.workdir / "collector.log")
        return self

    def ready(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
