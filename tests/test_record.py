"""``streamslo record`` on the real broker: exactly the beacons produced between --from and --to."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slo import conventions as c
from slo.beacon import Beacon, Event, encode
from streamslo.backtest import data
from streamslo.backtest.record import parse_time
from streamslo.testing.stream import create_topic, produce_beacons

pytestmark = pytest.mark.kafka


def _batch(tag: str, n: int) -> list[tuple[bytes, bytes]]:
    now = time.time()
    out = []
    for i in range(n):
        b = Beacon(f"rec-{tag}-{i}", 0, "eu-west-1", c.KIND_RUM, now + i * 1e-3, now,
                   [Event(c.EVENT_FIRST_FRAME, now - 0.2, 100.0 + i)])
        out.append((b.session_id.encode(), encode(b)))
    return out


def test_record_copies_the_span_in_arrival_order_and_skips_what_stage1_refuses(kafka_broker, tmp_path: Path) -> None:
    create_topic(kafka_broker.bootstrap, c.TOPIC_BEACONS, 3)
    asyncio.run(produce_beacons(kafka_broker.bootstrap, _batch("before", 50)))
    time.sleep(1.1)  # record timestamps are milliseconds: a clear gap either side of the span
    t_from = time.time()
    poison = [(b"x", b"{not json"), (b"y", b'{"session_id": "s"}')]
    asyncio.run(produce_beacons(kafka_broker.bootstrap, _batch("inside", 200) + poison))
    t_to = time.time()
    time.sleep(1.1)
    asyncio.run(produce_beacons(kafka_broker.bootstrap, _batch("after", 50)))

    out = tmp_path / "recording.jsonl.gz"
    run = subprocess.run([sys.executable, "-m", "streamslo.cli", "record", "--kafka", kafka_broker.bootstrap,
                          "--from", str(t_from), "--to", str(t_to), "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    header, beacons = data.read(out)
    ours = [b for b in beacons if b.session_id.startswith("rec-")]
    assert {b.session_id.split("-")[1] for b in ours} == {"inside"}
    assert len(ours) == 200
    received = [b.received_at for b in beacons]
    assert received == sorted(received)
    assert header.start == pytest.approx(t_from) and header.source.startswith("record:")
    assert "skipped invalid 1, malformed 1" in run.stdout


TIMES = [
    pytest.param("1764576000", 1764576000.0, id="unix seconds are taken as they are"),
    pytest.param("2025-12-01T08:00:00Z", 1764576000.0, id="an ISO time in UTC"),
    pytest.param("2025-12-01T09:00:00+01:00", 1764576000.0, id="an ISO time with an offset"),
]


@pytest.mark.parametrize(("text", "unix"), TIMES)
def test_record_times(text: str, unix: float) -> None:
    assert parse_time(text) == unix


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        parse_time("2025-12-01T08:00:00")


def _wire(i: int, value_ms: float) -> dict[str, object]:
    now = time.time()
    return {"v": 1, "session_id": f"run-{i}", "seq": 1, "sent_at": now, "region": "eu-west-1",
            "events": [{"type": "first_frame", "ts": now, "value_ms": value_ms}]}


def test_run_record_appends_exactly_the_accepted_beacons(tmp_path: Path) -> None:
    """``streamslo run --record``: 202s are in the file (with received_at), a 422 is not; a rerun appends."""
    import httpx

    from tests.test_embedded import embedded_server

    out = tmp_path / "live.jsonl.gz"
    for round_ in range(2):
        with embedded_server(f"streamslo run --record {out}", tmp_path / f"run{round_}.log") as base:
            codes = [httpx.post(f"{base}/v1/beacons", json=_wire(10 * round_ + i, 100.0 + i), timeout=10).status_code
                     for i in range(5)]
            bad = httpx.post(f"{base}/v1/beacons", json=_wire(99, -1.0), timeout=10).status_code
        assert codes == [202] * 5 and bad == 422
    header, beacons = data.read(out)
    got = [b.session_id for b in beacons]
    assert got == [f"run-{i}" for i in range(5)] + [f"run-{10 + i}" for i in range(5)]
    assert header.source == "run" and all(b.received_at >= header.start for b in beacons)
