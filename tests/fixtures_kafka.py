"""Real Kafka for tests: one broker per session, a factory for throwaway brokers, steady traffic.

Registered in ``tests/conftest.py`` (``pytest_plugins``). Use ``kafka_broker``
for anything that only produces and consumes; use ``kafka_broker_factory``
when a test stops, kills or restarts the broker, so other tests keep theirs.
The broker, worker and collector helpers are :mod:`streamslo.testing`'s;
:class:`Traffic`, :func:`settle` and :func:`report` serve ``tests/reliability/``.

    @pytest.mark.kafka
    def test_roundtrip(kafka_broker):
        produce(kafka_broker.bootstrap, ...)
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from slo import conventions as c
from slo.beacon import Beacon, Event, encode
from streamslo.testing.beacons import wire_body
from streamslo.testing.kafka import KafkaBroker
from streamslo.testing.stream import (
    Samples,
    Worker,
    metric_sum,
    produce_beacons,
    wait_until,
)

# The broker and stream helpers live in streamslo.testing (benchmarks use them too).
__all__ = ["Traffic", "kafka_broker", "kafka_broker_factory", "progressing", "report", "settle"]


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
        return wire_body(self.beacon(i, now))

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
