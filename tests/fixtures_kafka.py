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
import json
import signal
import subprocess
import sys
import threading
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
from slo.beacon import Beacon, Event, encode


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


# --- reliability helpers (tests/reliability/): steady traffic, a collector, exact totals ---

RELIABILITY_REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1", "sa-east-1")


class Traffic:
    """Numbered beacons with known per-region totals, fed steadily by a background thread.

    Every beacon has 3 timed first frames, 1 fatal error and 1 interaction: 4
    playback attempts, 1 error. Its timestamps are taken when it is first sent,
    so a beacon retried after an outage keeps them (as a real client's would).
    Senders retry until acknowledged; the duplicates that retries can create are
    what stage 1's dedup removes, so the totals must still be exact.

        traffic = Traffic(n=2000).feed_kafka(broker.bootstrap)
        traffic.join(); wait_until(lambda: traffic.exact(worker.scrape()), ...)
    """

    def __init__(self, n: int, *, per_chunk: int = 50, pause_s: float = 0.25, tag: str = "t") -> None:
        self.n = n
        self.per_chunk = per_chunk
        self.pause_s = pause_s
        self.tag = tag
        self.sent = 0
        self.retries = 0
        self.errors: list[str] = []
        self._thread: threading.Thread | None = None

    def region(self, i: int) -> str:
        return RELIABILITY_REGIONS[i % len(RELIABILITY_REGIONS)]

    def beacon(self, i: int, now: float) -> Beacon:
        events = [Event(c.EVENT_FIRST_FRAME, now - 0.1 * k, 80.0 + 10 * k) for k in range(3)]
        events += [Event(c.EVENT_ERROR, now, None, True), Event(c.EVENT_INTERACTION, now, 40.0)]
        return Beacon(f"{self.tag}{i}", 0, self.region(i), c.KIND_RUM, now, now, events)

    def wire(self, i: int, now: float) -> bytes:
        """Beacon ``i`` as a public v1 body (``POST /v1/beacons``)."""
        b = self.beacon(i, now)
        return json.dumps({
            "v": 1, "session_id": b.session_id, "seq": b.seq, "sent_at": now, "region": b.region,
            "events": [{"type": e.type, "ts": e.t, "value_ms": e.value_ms, "fatal": e.fatal} for e in b.events],
        }).encode()

    # -- senders ---------------------------------------------------------------------

    def feed_kafka(self, bootstrap: str) -> Traffic:
        """Produce straight to ``beacons`` in chunks, retrying a chunk until it is acked."""

        def send(chunk: range) -> None:
            now = time.time()
            values = [(f"{self.tag}{i}".encode(), encode(self.beacon(i, now))) for i in chunk]
            while True:
                try:
                    asyncio.run(asyncio.wait_for(produce_beacons(bootstrap, values), 15))
                    return
                except Exception:  # broker down: retry the whole chunk (dedup removes repeats)
                    self.retries += 1
                    time.sleep(0.5)

        return self._start(send)

    def feed_collector(self, port: Callable[[], int]) -> Traffic:
        """POST every beacon to the collector at ``port()``, retrying until a 202."""

        def send(chunk: range) -> None:
            now = time.time()
            with httpx.Client(timeout=10) as client:
                for i in chunk:
                    body = self.wire(i, now)
                    while True:
                        try:
                            r = client.post(f"http://127.0.0.1:{port()}/v1/beacons", content=body,
                                            headers={"content-type": "application/json"})
                            if r.status_code == 202:
                                break
                            if r.status_code != 503:
                                self.errors.append(f"{r.status_code} {r.text[:200]}")
                                break
                        except httpx.HTTPError:
                            pass  # collector down: retry, as the SDK does
                        self.retries += 1
                        time.sleep(0.2)

        return self._start(send)

    def _start(self, send: Callable[[range], None]) -> Traffic:
        def run() -> None:
            for lo in range(0, self.n, self.per_chunk):
                send(range(lo, min(lo + self.per_chunk, self.n)))
                self.sent = min(lo + self.per_chunk, self.n)
                time.sleep(self.pause_s)

        self._thread = threading.Thread(target=run, daemon=True, name=f"traffic-{self.tag}")
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"traffic still sending after {timeout}s ({self.sent}/{self.n})"
        assert not self.errors, self.errors[:5]

    # -- expectations ----------------------------------------------------------------

    def expected(self) -> dict[str, tuple[int, int, int]]:
        """Region -> (attempts, errors, ttff count) once every beacon has been counted once."""
        per = {r: sum(1 for i in range(self.n) if self.region(i) == r) for r in RELIABILITY_REGIONS}
        return {r: (4 * k, k, 3 * k) for r, k in per.items()}

    @staticmethod
    def totals(samples: Samples) -> dict[str, tuple[int, int, int]]:
        return {r: (int(metric_sum(samples, c.METRIC_ATTEMPTS, region=r)),
                    int(metric_sum(samples, c.METRIC_ERRORS, region=r)),
                    int(metric_sum(samples, c.METRIC_LATENCY_COUNT, region=r, sli=c.SLI_TTFF)))
                for r in RELIABILITY_REGIONS}

    def exact(self, samples: Samples) -> bool:
        return self.totals(samples) == self.expected()


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
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
        )
        log.close()
        wait_until(self.ready, timeout, "collector /readyz")
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


def progressing(worker: Worker) -> bool:
    """The worker has aggregated at least one event (its stage 1 and /metrics are up)."""
    return metric_sum(worker.scrape(), c.METRIC_STREAM_EVENTS) > 0


def settle(worker: Worker, traffic: Traffic, pid: int | None, timeout: float = 90) -> float:
    """Wait for exact totals from the same, never restarted worker; return the seconds waited."""
    traffic.join(timeout)
    try:
        waited = wait_until(lambda: traffic.exact(worker.scrape()) or not worker.alive(), timeout, "exact totals")
    except AssertionError as exc:
        samples = worker.scrape()
        stream = {f"{n}{dict(lab)}": v for (n, lab), v in samples.items() if n.startswith("streamslo_stream_")}
        raise AssertionError(f"{exc}: {traffic.totals(samples)} != {traffic.expected()}\n{stream}\n"
                             f"{worker.log_tail(60)}\n{worker.notable_lines()}") from None
    assert worker.alive() and worker.pid == pid, f"the worker died or was restarted\n{worker.log_tail()}"
    samples = worker.scrape()
    assert traffic.totals(samples) == traffic.expected()
    assert metric_sum(samples, c.METRIC_STREAM_PARTIALS, stage="2", outcome="overlapping") == 0
    return waited


def report(name: str, **figures: float) -> None:
    """One ``RELIABILITY scenario=... key=value`` line: the figures docs/reliability.md quotes."""
    print(f"\nRELIABILITY scenario={name} " + " ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                                                    for k, v in figures.items()))
