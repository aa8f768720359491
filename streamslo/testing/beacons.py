"""Beacon builders shared by tests and benchmarks: Kafka records and public v1 bodies.

Use :func:`record` for what the collector would produce to ``beacons``,
:func:`wire_body` for what a client would POST to ``/v1/beacons``, and
:func:`lognormal_batch` for a large reproducible batch of records (stream
benchmarks, throughput tests).

    b = Beacon("s1", 0, "eu-west-1", c.KIND_RUM, now, now, [Event(c.EVENT_FIRST_FRAME, now, 120.0)])
    key, value = record(b)
    httpx.post(f"{base}/v1/beacons", content=wire_body(b), headers={"content-type": "application/json"})
"""

from __future__ import annotations

import json

import numpy as np

from slo import conventions as c
from slo.beacon import Beacon, Event, encode

BATCH_REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")


def record(beacon: Beacon) -> tuple[bytes, bytes]:
    """``(key, value)`` as the collector produces it: keyed by session, msgpack value."""
    return beacon.session_id.encode(), encode(beacon)


def wire_body(beacon: Beacon) -> bytes:
    """``beacon`` as a public v1 JSON body (``POST /v1/beacons``)."""
    return json.dumps({
        "v": 1, "session_id": beacon.session_id, "seq": beacon.seq, "sent_at": beacon.sent_at,
        "region": beacon.region, "kind": beacon.kind,
        "events": [{"type": e.type, "ts": e.t, "value_ms": e.value_ms, "fatal": e.fatal}
                   for e in beacon.events],
    }).encode()


def lognormal_batch(n: int, events: int, seed: int, now: float) -> list[tuple[bytes, bytes]]:
    """``n`` records of ``events`` events each: 1 first frame in 5, the rest interactions,
    latencies lognormal around 100 ms; 4 beacons per session, regions in turn."""
    rng = np.random.default_rng(seed)
    lat = rng.lognormal(np.log(100), 0.5, (n, events)).round(2)
    out = []
    for i in range(n):
        evs = [Event(c.EVENT_FIRST_FRAME if j % 5 == 0 else c.EVENT_INTERACTION,
                     now - 0.05 * j, float(lat[i, j])) for j in range(events)]
        session = f"b{i // 4:07d}"
        out.append(record(Beacon(session, i % 4, BATCH_REGIONS[i % 3], c.KIND_RUM, now, now - 0.2, evs)))
    return out
