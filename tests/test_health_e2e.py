"""Region health end to end, real processes: ``streamslo run`` and stream workers on the real broker.

The short test spec (``tests/specs/short.yaml``): the failover trigger (the
one with a Route 53 target) holds for ``for: 30s`` and recovers after
``recover_for: 20s``. An incident is switched on in one region: its health
must turn 503 no earlier than ``for`` after the incident starts (and exactly
``for`` after its condition started holding), every other region stays 200
all along; once the incident stops it must be 200 again no earlier than
``recover_for`` after the condition cleared.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from slo import conventions as c
from slo.beacon import Beacon, Event, encode
from slo.model import Spec, Trigger
from slo.spec import load_spec
from streamslo.demo import DemoTraffic
from streamslo.testing.stream import Worker, create_topic, wait_until
from tests.test_embedded import embedded_server

ROOT = Path(__file__).resolve().parent.parent
SHORT_SPEC = ROOT / "tests" / "specs" / "short.yaml"
INCIDENT, CALM = "eu-west-1", "us-east-1"
POLL_S = 0.5


@dataclass
class Answer:
    t: float
    status: int
    doc: dict[str, Any]

    def trigger(self, name: str) -> dict[str, Any]:
        return next(t for t in self.doc["triggers"] if t["trigger"] == name)


@dataclass
class Watch:
    """Every answer seen, per region, with the local receive time."""

    answers: dict[str, list[Answer]] = field(default_factory=dict)

    def poll(self, urls: dict[str, list[str]]) -> None:
        for region, region_urls in urls.items():
            for url in region_urls:
                r = httpx.get(url, timeout=5)
                head, body = r.text.split("\n", 1)
                assert head == ("SLO_OK" if r.status_code == 200 else "SLO_BREACH"), r.text[:200]
                self.answers.setdefault(region, []).append(Answer(time.time(), r.status_code, json.loads(body)))

    def last(self, region: str) -> Answer:
        return self.answers[region][-1]


def health_urls(bases: list[str], region: str) -> list[str]:
    return [f"{b}{c.HEALTH_PATH.format(region=region)}" for b in bases]


def run_incident(spec: Spec, bases: list[str], switch: Callable[[bool], None], timeout_s: float = 150.0) -> None:
    """The scenario shared by both transports; ``bases`` are every server that must agree."""
    trigger: Trigger = next(t for t in spec.triggers if t.name == "failover")
    urls = {INCIDENT: health_urls(bases, INCIDENT), CALM: health_urls(bases, CALM)}
    watch = Watch()

    def has_data() -> bool:
        watch.poll(urls)
        return all(not watch.last(r).trigger(trigger.name)["no_data"] for r in urls)

    wait_until(has_data, 90, "both regions reporting data")
    assert all(a.status == 200 for r in urls for a in watch.answers[r]), "unhealthy before the incident"

    t_on = time.time()
    switch(True)

    def breached() -> bool:
        watch.poll(urls)
        return watch.last(INCIDENT).status == 503

    wait_until(breached, timeout_s, f"{INCIDENT} turning 503", step=POLL_S)
    first_503 = next(a for a in watch.answers[INCIDENT] if a.t >= t_on and a.status == 503)
    failover = first_503.trigger(trigger.name)
    assert first_503.t - t_on >= trigger.for_s, "503 before for: had elapsed since the incident began"
    assert failover["breach_since"] - failover["held_since"] == pytest.approx(trigger.for_s)
    assert failover["held_since"] >= t_on - 1.0
    # Every server answers the same once the breach is there.
    wait_until(lambda: (watch.poll(urls), all(a.status == 503 for a in watch.answers[INCIDENT][-len(bases):]))[1],
               10, "every server agreeing on the breach", step=POLL_S)

    t_off = time.time()
    switch(False)

    def recovered() -> bool:
        watch.poll(urls)
        return all(a.status == 200 for a in watch.answers[INCIDENT][-len(bases):])

    wait_until(recovered, timeout_s, f"{INCIDENT} recovering", step=POLL_S)
    last_503 = [a for a in watch.answers[INCIDENT] if a.status == 503][-1]
    first_200 = next(a for a in watch.answers[INCIDENT] if a.t > t_off and a.status == 200)
    clear_since = last_503.trigger(trigger.name)["clear_since"]
    assert clear_since is not None and clear_since >= t_off - 1.0
    assert first_200.t - clear_since >= trigger.recover_for_s - 0.5, "healthy before recover_for"
    assert first_200.t - clear_since <= trigger.recover_for_s + 5.0, "recovery took far longer than recover_for"
    assert all(a.status == 200 for a in watch.answers[CALM]), f"{CALM} was unhealthy at some point"
    print(
        f"\nhealth e2e: 503 after {first_503.t - t_on:.1f}s (for {trigger.for_s:g}s), "
        f"200 again {first_200.t - t_off:.1f}s after the incident stopped "
        f"({first_200.t - clear_since:.1f}s after the condition cleared, recover_for {trigger.recover_for_s:g}s); "
        f"{sum(len(v) for v in watch.answers.values())} answers from {len(bases)} server(s)"
    )


@pytest.mark.slow
def test_streamslo_run_region_health_follows_a_demo_incident(tmp_path: Path) -> None:
    spec = load_spec(SHORT_SPEC)[0]
    command = f"streamslo run --spec {SHORT_SPEC} --demo --demo-rate 20 --flush-interval 0.25"
    with embedded_server(command, tmp_path / "run.log") as base:
        unknown = httpx.get(f"{base}{c.HEALTH_PATH.format(region='mars-north-1')}", timeout=5)
        assert unknown.status_code == 404 and "mars-north-1" in unknown.text

        def switch(on: bool) -> None:
            params = {"region": INCIDENT, "on": int(on)}
            httpx.post(f"{base}/api/demo/incident", params=params, timeout=5).raise_for_status()

        run_incident(spec, [base], switch)


def _wire_to_beacon(doc: dict[str, Any], now: float) -> bytes:
    """What the collector produces for one demo beacon (its clock-skew correction is a no-op here)."""
    events = [Event(e["type"], e["ts"], e.get("value_ms"), bool(e.get("fatal", False))) for e in doc["events"]]
    beacon = Beacon(doc["session_id"], doc["seq"], doc["region"], doc["kind"], now, doc["sent_at"], events, doc["sdk"])
    return encode(beacon)


class KafkaTraffic:
    """Demo traffic for the spec's regions produced straight to ``beacons``, in a thread."""

    def __init__(self, bootstrap: str, spec: Spec) -> None:
        self.bootstrap = bootstrap
        self.spec = spec
        self.traffic: DemoTraffic | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._task: Any = None

    def start(self) -> KafkaTraffic:
        self._thread.start()
        self._task = asyncio.run_coroutine_threadsafe(self._run(), self._loop)
        return self

    async def _run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        await producer.start()

        async def send(doc: dict[str, Any]) -> int:
            await producer.send(c.TOPIC_BEACONS, _wire_to_beacon(doc, time.time()), key=doc["session_id"].encode())
            return 202

        self.traffic = DemoTraffic(self.spec.regions, send, beacons_per_s=20.0, seed=7)
        try:
            await self.traffic.run()
        finally:
            await producer.stop()

    def switch(self, on: bool) -> None:
        assert self.traffic is not None
        self._loop.call_soon_threadsafe(self.traffic.set_incident, INCIDENT, on)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        time.sleep(0.5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.mark.kafka
@pytest.mark.slow
def test_two_workers_answer_alike_and_follow_a_demo_incident(kafka_broker_factory: Any, tmp_path: Path) -> None:
    spec = load_spec(SHORT_SPEC)[0]
    # A broker of its own: the topic names are fixed and the shared broker's
    # `beacons` holds other tests' traffic.
    bootstrap = kafka_broker_factory().bootstrap
    create_topic(bootstrap, c.TOPIC_BEACONS, 4)
    create_topic(bootstrap, c.TOPIC_PARTIALS, 2)
    args = ("--spec", str(SHORT_SPEC), "--stage1-in-process", "--beacons-partitions", "4",
            "--partials-partitions", "2", "--flush-interval", "0.5")
    workers = [Worker(bootstrap, tmp_path, name, *args).start() for name in ("w1", "w2")]
    traffic = KafkaTraffic(bootstrap, spec).start()
    try:
        bases = [f"http://127.0.0.1:{w.port}" for w in workers]

        def both_ready() -> bool:
            try:
                return all(httpx.get(f"{b}/readyz", timeout=2).status_code == 200 for b in bases)
            except httpx.HTTPError:
                return False

        wait_until(both_ready, 60, "both workers ready (caught up with slo-health)")
        assert httpx.get(f"{bases[0]}{c.HEALTH_PATH.format(region='mars-north-1')}", timeout=5).status_code == 404
        run_incident(spec, bases, traffic.switch)
        # One worker holds the incident region's stage-2 state; the other answered alike without it.
        owners = [w.name for w in workers
                  if any(n == c.METRIC_TRIGGER_ACTIVE and (c.LABEL_REGION, INCIDENT) in labels
                         for n, labels in w.scrape())]
        assert len(owners) == 1, owners
    except BaseException:
        for w in workers:
            print(f"--- {w.name} log ---\n{w.log_tail(60)}")
        raise
    finally:
        traffic.stop()
        for w in workers:
            w.stop()
