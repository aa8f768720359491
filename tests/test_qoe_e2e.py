"""End to end for the QoE SLIs (issue 16): a seeded corpus with known totals gives exact figures on /metrics.

The same public v1 beacons (stalls and playing heartbeats in integer
milliseconds, exits before start, fatal / warning / business errors in both
the ``class`` and the legacy ``fatal`` spelling, live latencies, a ``cdn``
dimension with allow-listed, unknown and missing values) go

- (a) into the embedded all-in-one (``streamslo run``'s app, in process over
  ASGI: collector handler -> engine -> ``/metrics``), and
- (b) into a real ``streamslo collector`` -> a real Kafka broker -> a real
  ``streamslo worker``,

and both must show the exact rebuffering ratio (``streamslo_sli_ratio``) and
the exact counters it comes from, per region and per cdn; exits before start
in the attempts and in their ratio; business refusals in neither attempts
nor errors (the burn rate is what the corpus without them gives); live
latency quantiles within the sketch's relative accuracy of numpy's.

The spec is ``tests/specs/qoe.yaml`` (cdn on ttff and rebuffering) with a
5-minute quantile window added, so a slow run still reads every event.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from slo import conventions as c
from slo.model import Spec
from slo.sketch import RELATIVE_ACCURACY
from slo.spec import load_spec
from streamslo.embedded import build_app
from streamslo.testing.kafka import KafkaBroker
from streamslo.testing.ports import free_port, wait_for_http
from streamslo.testing.stream import Samples, Worker, create_topic, metric_sum, wait_until

QOE_SPEC = Path(__file__).parent / "specs" / "qoe.yaml"
REGIONS = ("us-east-1", "eu-west-1")
CDNS = ("akamai", "fastly", "cloudfront")
WINDOW = "5m"


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    doc = yaml.safe_load(QOE_SPEC.read_text())
    doc["stream"]["quantile_windows"] = ["10s", "1m", WINDOW]
    path = tmp_path_factory.mktemp("qoe") / "qoe-5m.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def spec(spec_path: Path) -> Spec:
    return load_spec(spec_path)[0]


@dataclass
class Corpus:
    """Wire bodies and what every figure must be: exact counts per region (and per cdn)."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    outcomes: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))  # (region, counter)
    stall_ms: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))  # (region, cdn)
    played_ms: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    stalls: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    ttff: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))  # first frames per cdn
    live_s: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def without_business(self) -> list[dict[str, Any]]:
        """The bodies with every business refusal left out (and beacons left empty dropped)."""
        out = []
        for body in self.bodies:
            events = [e for e in body["events"] if e.get("class") != c.ERROR_CLASS_BUSINESS]
            if events:
                out.append({**body, "events": events})
        return out

    def rebuffer_ratio(self, region: str) -> float:
        stall = sum(v for (r, _), v in self.stall_ms.items() if r == region)
        played = sum(v for (r, _), v in self.played_ms.items() if r == region)
        return stall / (stall + played)


# A start ends a play attempt one way or another; business refusals are no attempt.
STARTS = (
    ("first_frame", 0.80), ("fatal_class", 0.03), ("fatal_legacy", 0.02), ("exit", 0.07), ("business", 0.08),
)


def make_corpus(seed: int, beacons: int, now: float) -> Corpus:
    """``beacons`` viewer beacons over both regions: one start each, then playback when it started."""
    rng = random.Random(seed)
    corpus = Corpus()
    names, weights = [name for name, _ in STARTS], [weight for _, weight in STARTS]
    for i in range(beacons):
        region = REGIONS[i % 2]
        roll = rng.random()
        cdn_sent = rng.choice(CDNS) if roll < 0.8 else (f"unknown-{i}" if roll < 0.9 else None)
        cdn = cdn_sent if cdn_sent in CDNS else c.REGION_OTHER
        t = now - rng.uniform(1.0, 20.0)
        events: list[dict[str, Any]] = []
        start = rng.choices(names, weights)[0]
        if start == "first_frame":
            events.append({"type": c.EVENT_FIRST_FRAME, "ts": t, "value_ms": rng.randint(40, 400)})
            corpus.ttff[(region, cdn)] += 1
        elif start == "fatal_class":
            events.append({"type": c.EVENT_ERROR, "ts": t, "code": "NET", "class": c.ERROR_CLASS_FATAL})
        elif start == "fatal_legacy":
            events.append({"type": c.EVENT_ERROR, "ts": t, "code": "NET", "fatal": True})
        elif start == "exit":
            events.append({"type": c.EVENT_EXIT_BEFORE_START, "ts": t, "value_ms": rng.randint(500, 9000)})
        else:
            events.append({"type": c.EVENT_ERROR, "ts": t, "code": "GEO_BLOCKED", "class": c.ERROR_CLASS_BUSINESS})
        counter = {"first_frame": "attempts", "fatal_class": "errors", "fatal_legacy": "errors",
                   "exit": "exits", "business": "business"}[start]
        corpus.outcomes[(region, counter)] += 1
        if counter in ("errors", "exits"):
            corpus.outcomes[(region, "attempts")] += 1
        if start == "first_frame":
            for _ in range(rng.randint(0, 2)):  # recovered errors, both spellings: warnings
                legacy = rng.random() < 0.5
                events.append({"type": c.EVENT_ERROR, "ts": t + 0.1, "code": "DECODE",
                               **({"fatal": False} if legacy else {"class": c.ERROR_CLASS_WARNING})})
                corpus.outcomes[(region, "warnings")] += 1
            for _ in range(rng.randint(0, 2)):
                stall = rng.randint(100, 3000)
                events.append({"type": c.EVENT_STALL, "ts": t + 0.2, "value_ms": stall})
                corpus.stall_ms[(region, cdn)] += stall
                corpus.stalls[(region, cdn)] += 1
            for _ in range(rng.randint(1, 3)):
                played = rng.randint(2000, 15000)
                events.append({"type": c.EVENT_PLAYING, "ts": t + 0.3, "value_ms": played})
                corpus.played_ms[(region, cdn)] += played
            for _ in range(rng.randint(0, 2)):
                live = round(rng.lognormvariate(np.log(2500 if region == REGIONS[0] else 4000), 0.4), 3)
                events.append({"type": c.EVENT_LIVE_LATENCY, "ts": t + 0.4, "value_ms": live})
                corpus.live_s[region].append(live / 1000.0)
        body: dict[str, Any] = {"v": 1, "session_id": f"q{seed}-{i:05d}", "seq": 1, "sent_at": now,
                                "region": region, "kind": c.KIND_RUM, "events": events}
        if cdn_sent is not None:
            body["dimensions"] = {"cdn": cdn_sent, "platform": "web"}  # platform: not the spec's, ignored
        corpus.bodies.append(body)
    return corpus


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def one(samples: Samples, name: str, **labels: str) -> float:
    """The single sample ``name`` with exactly ``labels``."""
    value = samples.get((name, frozenset(labels.items())))
    assert value is not None, f"missing {name}{labels}"
    return value


def counted(samples: Samples, corpus: Corpus) -> bool:
    """Every beacon reached stage 2: attempts and played seconds are complete in both regions."""
    return all(
        metric_sum(samples, c.METRIC_ATTEMPTS, region=r) == corpus.outcomes[(r, "attempts")]
        and metric_sum(samples, c.METRIC_PLAYED_SECONDS, region=r)
        == pytest.approx(sum(v for (rr, _), v in corpus.played_ms.items() if rr == r) / 1000, abs=1e-9)
        and metric_sum(samples, c.METRIC_BUSINESS_ERRORS, region=r) == corpus.outcomes[(r, "business")]
        for r in REGIONS
    )


def check_exact(samples: Samples, corpus: Corpus, spec: Spec) -> None:
    """The rebuffer ratio, the counters behind it, the outcomes and the live latency quantiles."""
    rum = c.KIND_RUM
    for region in REGIONS:
        ratio = one(samples, c.METRIC_SLI_RATIO, region=region, slo="rebuffering", window="1h")
        assert ratio == corpus.rebuffer_ratio(region)  # exact, not approximately
        for cdn in (*CDNS, c.REGION_OTHER):
            labels = {"region": region, "kind": rum, "cdn": cdn}
            assert one(samples, c.METRIC_REBUFFER_SECONDS, **labels) == corpus.stall_ms[(region, cdn)] / 1000
            assert one(samples, c.METRIC_PLAYED_SECONDS, **labels) == corpus.played_ms[(region, cdn)] / 1000
            assert one(samples, c.METRIC_REBUFFER_EVENTS, **labels) == corpus.stalls[(region, cdn)]
            assert one(samples, c.METRIC_LATENCY_COUNT, sli=c.SLI_TTFF, **labels) == corpus.ttff[(region, cdn)]
        outcome = {name: corpus.outcomes[(region, key)] for name, key in (
            (c.METRIC_ATTEMPTS, "attempts"), (c.METRIC_ERRORS, "errors"), (c.METRIC_EXITS_BEFORE_START, "exits"),
            (c.METRIC_WARNINGS, "warnings"), (c.METRIC_BUSINESS_ERRORS, "business"))}
        for name, total in outcome.items():  # errors do not opt in to cdn: {region, kind} only
            assert one(samples, name, region=region, kind=rum) == total, name
        attempts = outcome[c.METRIC_ATTEMPTS]
        exits_ratio = one(samples, c.METRIC_SLI_RATIO, region=region, slo="exits_before_start", window="1h")
        assert exits_ratio == outcome[c.METRIC_EXITS_BEFORE_START] / attempts
        errors_burn = one(samples, c.METRIC_BURN_RATE, region=region, slo="errors", window="1h")
        assert errors_burn == pytest.approx(outcome[c.METRIC_ERRORS] / attempts / spec.slo("errors").budget)
        live = np.asarray(corpus.live_s[region])
        for q in (0.5, 0.95, 0.99):
            labels = {"region": region, "sli": c.SLI_LIVE_LATENCY, "kind": rum, "quantile": str(q), "window": WINDOW}
            want = float(np.percentile(live, q * 100))
            assert one(samples, c.METRIC_LATENCY_QUANTILE, **labels) == pytest.approx(want, rel=RELATIVE_ACCURACY)


async def embedded_metrics(spec: Spec, bodies: list[dict[str, Any]], corpus: Corpus) -> Samples:
    """POST ``bodies`` to the embedded app and return ``/metrics`` once every attempt is counted."""
    app, _ = build_app(spec, flush_interval_s=0.05)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://embedded"
    ) as client:
        for body in bodies:
            resp = await client.post("/v1/beacons", json=body)
            assert resp.status_code == 202, resp.text
        deadline = time.monotonic() + 30
        while True:
            samples = parse((await client.get("/metrics")).text)
            attempts = [metric_sum(samples, c.METRIC_ATTEMPTS, region=r) for r in REGIONS]
            if attempts == [corpus.outcomes[(r, "attempts")] for r in REGIONS] or time.monotonic() > deadline:
                return samples
            await asyncio.sleep(0.05)


def test_embedded_gives_the_exact_rebuffer_ratio_and_business_never_burns(spec: Spec) -> None:
    corpus = make_corpus(seed=16, beacons=800, now=time.time())
    assert all(corpus.stall_ms[(r, cdn)] for r in REGIONS for cdn in (*CDNS, c.REGION_OTHER))
    samples = asyncio.run(embedded_metrics(spec, corpus.bodies, corpus))
    assert counted(samples, corpus)
    check_exact(samples, corpus, spec)
    # the same corpus without its business refusals: attempts, errors and burn rates unchanged
    plain = asyncio.run(embedded_metrics(spec, corpus.without_business(), corpus))
    for region in REGIONS:
        assert one(plain, c.METRIC_BUSINESS_ERRORS, region=region, kind=c.KIND_RUM) == 0
        for name in (c.METRIC_ATTEMPTS, c.METRIC_ERRORS):
            assert one(plain, name, region=region, kind=c.KIND_RUM) == one(samples, name, region=region, kind=c.KIND_RUM)
        for slo in ("errors", "exits_before_start"):
            for window in ("1m", "4m", "1h"):
                key = {"region": region, "slo": slo, "window": window}
                assert one(plain, c.METRIC_BURN_RATE, **key) == one(samples, c.METRIC_BURN_RATE, **key)


def start_collector(bootstrap: str, spec_path: Path, tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``streamslo collector --spec`` on a free port (it maps the cdn dimension from the spec)."""
    port = free_port()
    log = open(tmp / "collector.log", "ab")  # noqa: SIM115 (child owns it)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamslo.cli", "collector", "--kafka", bootstrap, "--spec", str(spec_path),
         "--port", str(port), "--no-require-key", "--rate-per-key", "0"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log.close()
    wait_for_http(f"http://127.0.0.1:{port}/readyz", proc, log=tmp / "collector.log")
    return proc, port


@pytest.mark.kafka
def test_through_kafka_a_real_worker_gives_the_same_exact_figures(
    kafka_broker_factory: Callable[[], KafkaBroker], spec: Spec, spec_path: Path, tmp_path: Path
) -> None:
    broker = kafka_broker_factory()  # its own broker: nothing else in its beacons topic
    create_topic(broker.bootstrap, c.TOPIC_BEACONS, 4)
    worker = Worker(broker.bootstrap, tmp_path, "qoe", "--spec", str(spec_path)).start()
    collector, port = start_collector(broker.bootstrap, spec_path, tmp_path)
    try:
        corpus = make_corpus(seed=61, beacons=800, now=time.time())
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for body in corpus.bodies:
                resp = client.post("/v1/beacons", content=json.dumps(body),
                                   headers={"content-type": "application/json"})
                assert resp.status_code == 202, resp.text
        waited = wait_until(lambda: counted(worker.scrape(), corpus), 120, "every beacon counted")
        print(f"\nqoe: {len(corpus.bodies)} beacons exact on the worker's /metrics {waited:.1f}s later")
        check_exact(worker.scrape(), corpus, spec)
    except BaseException:
        print(worker.log_tail(30))
        raise
    finally:
        collector.terminate()
        collector.wait(20)
        worker.stop()
