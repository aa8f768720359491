"""Real Kafka for tests: one broker per session, plus a factory for throwaway brokers.

Registered in ``tests/conftest.py`` (``pytest_plugins``). Use ``kafka_broker``
for anything that only produces and consumes; use ``kafka_broker_factory``
when a test stops, kills or restarts the broker, so other tests keep theirs.

    @pytest.mark.kafka
    def test_roundtrip(kafka_broker):
        produce(kafka_broker.bootstrap, ...)
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from scripts.kafka import KafkaBroker, free_port
from slo import conventions as c


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    """One single-node KRaft broker shared by the whole test session."""
    broker = KafkaBroker().start()
    print(f"\nkafka: session broker {broker.bootstrap} started in {broker.startup_s:.1f}s")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_broker_factory() -> Iterator[Callable[[], KafkaBroker]]:
    """A function starting extra brokers; every one is stopped at teardown."""
    brokers: list[KafkaBroker] = []

    def make() -> KafkaBroker:
        broker = KafkaBroker().start()
        print(f"\nkafka: extra broker {broker.bootstrap} started in {broker.startup_s:.1f}s")
        brokers.append(broker)
        return broker

    try:
        yield make
    finally:
        for broker in brokers:
            broker.stop()


# --- stream-worker helpers (used by tests/test_stream_*.py and bench/bench_stream.py) ---

ROOT = Path(__file__).resolve().parent.parent


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
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
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


def metric_sum(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
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
