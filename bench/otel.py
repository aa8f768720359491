"""The OpenTelemetry Collector as a benchmark peer: build, configure, feed, count.

Use :func:`vs_otel_main` (``bench/bench_ingest.py --vs-otel``) to measure the
collector against an OpenTelemetry Collector distribution built by
``bench/otelcol/build.sh`` (otlpreceiver, batchprocessor, kafkaexporter,
nopexporter; versions pinned in ``bench/otelcol/go.mod``). Three pairs, each
served at once on CPU 0 (the Go runtime with ``GOMAXPROCS=1``):

- ``kafka`` vs ``otel_sync``: both answer after the broker's acks=all (the
  collector groups the beacons of one partition in a record, OTel sends one
  message per request), OTLP/HTTP JSON;
- ``kafka`` vs ``otel_batch``: OTel with its batch processor and protobuf
  bodies, answering before any ack;
- ``inprocess`` vs ``otel_nop``: receive, decode and drop, OTLP/HTTP JSON.

Each OTLP request carries the same 20 events as the collector's beacon, as
20 log records (time, type, value_ms) under one resource (session, seq,
region, sdk, kind). Counts are checked exactly after every round: the
collector's topic holds one beacon per 202, and the OTel topic's log
records are 20 per 200 (for ``otel_sync`` also one message per 200).

    python bench/bench_ingest.py --vs-otel --rounds 3 --seconds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import string
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ingest_legs import start_server
from loadgen import EVENTS, Requests
from pairing import Side, run_pair

from slo.beacon import decode_record
from streamslo.testing.ports import free_port, wait_for_http
from streamslo.testing.stream import create_topic

OTELCOL_DIR = Path(__file__).resolve().parent / "otelcol"
OTEL_LEGS = {"otel_sync": "sync", "otel_batch": "batch", "otel_nop": "nop"}
PAIRS = (("kafka", "otel_sync", "json"), ("kafka", "otel_batch", "protobuf"),
         ("inprocess", "otel_nop", "json"))


def build() -> Path:
    """Build (or reuse) the OTel Collector binary; returns its path."""
    out = subprocess.run(["bash", str(OTELCOL_DIR / "build.sh")], check=True,
                         capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


class OtlpRequests:
    """Unique OTLP/HTTP logs requests (JSON or protobuf) holding the benchmark's 20 events.

    The body is built once with fixed-width placeholders for the session id and
    seq, then patched per request: same length, so a protobuf stays valid.
    """

    def __init__(self, encoding: str) -> None:
        from google.protobuf.json_format import MessageToJson
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

        now = time.time()
        req = ExportLogsServiceRequest()
        rl = req.resource_logs.add()
        for k, v in (("session.id", "bench-SSSSSSSSSS"), ("beacon.seq", "QQQQQQQQQQ"),
                     ("region", "eu-west-1"), ("sdk", "bench/1"), ("kind", "rum")):
            a = rl.resource.attributes.add()
            a.key, a.value.string_value = k, v
        sl = rl.scope_logs.add()
        sl.scope.name = "streamslo.bench"
        for i in range(EVENTS):
            rec = sl.log_records.add()
            rec.time_unix_nano = int((now - 5 + i * 0.1) * 1e9)
            a = rec.attributes.add()
            a.key, a.value.string_value = "type", "first_frame" if i % 4 == 0 else "interaction"
            a = rec.attributes.add()
            a.key, a.value.double_value = "value_ms", 50 + i * 7.5
        if encoding == "json":
            self._body: bytes = MessageToJson(req, indent=None).encode()
            ctype = b"application/json"
        else:
            self._body = bytes(req.SerializeToString())
            ctype = b"application/x-protobuf"
        self._head = (b"POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + ctype +
                      b"\r\nContent-Length: %d\r\n\r\n" % len(self._body))
        self.n = 0

    def next(self) -> bytes:
        self.n += 1
        body = self._body.replace(b"SSSSSSSSSS", b"%010d" % (self.n % 997), 1)
        return self._head + body.replace(b"QQQQQQQQQQ", b"%010d" % self.n, 1)


def start_otelcol(binary: Path, leg: str, kafka: str | None, topic: str, workdir: Path,
                  pin: bool) -> tuple[subprocess.Popen[bytes], int]:
    """Start one OTel Collector for ``leg`` on CPU 0 with one Go thread running at a time."""
    port, metrics_port = free_port(), free_port()
    fields = {"port": port, "metrics_port": metrics_port, "brokers": kafka or "", "topic": topic}
    cmd = [str(binary)]
    for name in ("common", OTEL_LEGS[leg]):
        text = string.Template((OTELCOL_DIR / f"{name}.yaml.tmpl").read_text()).substitute(fields)
        path = workdir / f"{leg}-{port}-{name}.yaml"
        path.write_text(text)
        cmd += ["--config", str(path)]
    env = {**os.environ, "GOMAXPROCS": "1"}
    if pin and (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", "0", *cmd]
    return subprocess.Popen(cmd, env=env), port


def topic_counts(bootstrap: str, topic: str, otlp: bool) -> tuple[int, int]:
    """(messages, beacons) in ``topic``: log records / 20 for OTLP; for the collector, the beacons
    of every record (its group commit puts several beacons of one partition in one record)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"count-{topic}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p) for p in meta.partitions]
        highs = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
        messages = sum(highs.values())
        from opentelemetry.proto.logs.v1.logs_pb2 import LogsData

        consumer.assign([TopicPartition(topic, p, 0) for p in highs])
        seen, records, deadline = 0, 0, time.monotonic() + 120
        while seen < messages and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=1.0):
                if msg.error():
                    continue
                seen += 1
                if not otlp:
                    records += len(decode_record(msg.value()))
                    continue
                data = LogsData.FromString(msg.value())
                records += sum(len(s.log_records) for r in data.resource_logs for s in r.scope_logs)
        if not otlp:
            return messages, records if seen == messages else -1
        return messages, records // EVENTS if records % EVENTS == 0 else -1
    finally:
        consumer.close()


def _pair_round(pair: tuple[str, str, str], rnd: int, binary: Path, args: argparse.Namespace,
                kafka: str | None, workdir: Path) -> dict[str, Any]:
    """One round of one pair; raises if any count is off."""
    ours, theirs, encoding = pair
    ours_topic, otel_topic = f"vs-{ours}-{theirs}-r{rnd}", f"vs-{theirs}-r{rnd}"
    with_kafka = ours == "kafka"
    if with_kafka:
        assert kafka is not None
        create_topic(kafka, ours_topic, 4)
        create_topic(kafka, otel_topic, 4)
    a_proc, a_port = start_server(ours, args, kafka if with_kafka else None, None,
                                  env={"BENCH_TOPIC": ours_topic})
    b_proc, b_port = start_otelcol(binary, theirs, kafka, otel_topic, workdir, not args.no_pin)
    sides = [Side(ours, a_proc, a_port, Requests(), 202),
             Side(theirs, b_proc, b_port, OtlpRequests(encoding), 200)]
    if rnd % 2:
        sides.reverse()  # alternate which server is loaded first
    try:
        wait_for_http(f"http://127.0.0.1:{a_port}/readyz", a_proc)
        # An OpenTelemetry Collector is ready once it accepts an empty OTLP/JSON request.
        wait_for_http(f"http://127.0.0.1:{b_port}/v1/logs", b_proc, body=b"{}")
        results = run_pair(sides, concurrency=args.concurrency, seconds=args.seconds,
                           max_requests=args.max_requests, at70=theirs == "otel_sync")
    finally:
        for s in sides:
            s.proc.terminate()
        for s in sides:
            s.proc.wait(30)
    by = {s.name: (s, r) for s, r in zip(sides, results, strict=True)}
    out: dict[str, Any] = {"pair": pair, "round": rnd, "by": by}
    if with_kafka:
        out["counts"] = _check_counts(kafka, by[ours][0], ours_topic, by[theirs][0], otel_topic,
                                      theirs == "otel_sync")
    return out


def _check_counts(kafka: Any, ours: Side, ours_topic: str, theirs: Side, otel_topic: str,
                  one_message_each: bool) -> str:
    time.sleep(1.0)  # the batch leg's last batch is flushed on shutdown
    msgs, beacons = topic_counts(kafka, ours_topic, otlp=False)
    o_msgs, o_beacons = topic_counts(kafka, otel_topic, otlp=True)
    problems = []
    if beacons != ours.accepted:
        problems.append(f"{ours.name}: {beacons} beacons for {ours.accepted} accepted")
    if o_beacons != theirs.accepted:
        problems.append(f"{theirs.name}: {o_beacons} beacons for {theirs.accepted} accepted")
    if one_message_each and o_msgs != theirs.accepted:
        problems.append(f"{theirs.name}: {o_msgs} messages for {theirs.accepted} accepted")
    if ours.other or theirs.other:
        problems.append(f"other answers: {ours.name} {ours.other}, {theirs.name} {theirs.other}")
    if problems:
        raise RuntimeError("counts not exact: " + "; ".join(problems))
    return (f"exact: {ours.name} {beacons} beacons ({msgs} msgs) = {ours.accepted} 202s; {theirs.name} "
            f"{o_msgs} msgs, {o_beacons} beacons = {theirs.accepted} 200s")


def vs_otel_main(args: argparse.Namespace, kafka: str | None) -> list[str]:
    """``--vs-otel``: every pair ``--rounds`` times; prints a table, returns the RESULT fields."""
    binary = build()
    print(f"otelcol: {binary}")
    ratios: dict[str, list[float]] = {t: [] for _, t, _ in PAIRS}
    p99s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="otelcol-") as tmp:
        # Not counted: librdkafka burns CPU while a fresh broker is still slow, and the
        # first pair of round 0 would pay for it alone (49 us per beacon, seen once).
        _pair_round(PAIRS[0], -1, binary, argparse.Namespace(**{**vars(args), "seconds": 2.0}),
                    kafka, Path(tmp))
        for rnd in range(args.rounds):
            for pair in PAIRS:
                ours, theirs, enc = pair
                r = _pair_round(pair, rnd, binary, args, kafka, Path(tmp))
                (_, a), (_, b) = r["by"][ours], r["by"][theirs]
                ratio = a["per_cpu_s"] / b["per_cpu_s"]
                ratios[theirs].append(ratio)
                line = (f"round {rnd} {ours:>9} vs {theirs:<10} ({enc:>8}): per CPU-s "
                        f"{a['per_cpu_s']:>6.0f} vs {b['per_cpu_s']:>6.0f} = {ratio:.3f}x; rps "
                        f"{a['rps']:>5.0f} vs {b['rps']:>5.0f}; CPU us main+threads "
                        f"{a['us_main']:.0f}+{a['us_threads']:.0f} vs {b['us_main']:.0f}+"
                        f"{b['us_threads']:.0f}")
                if "p99_at70" in a:
                    p99s.append(a["p99_at70"] / b["p99_at70"])
                    line += (f"; p99 at {a['rate_at70']:.0f}/s each {a['p99_at70']:.1f} vs "
                             f"{b['p99_at70']:.1f} ms")
                print(line)
                if "counts" in r:
                    print(f"        counts {r['counts']}")
    med = {t: statistics.median(v) for t, v in ratios.items()}
    for t, v in ratios.items():
        print(f"median collector / {t}: {med[t]:.3f} (rounds: {', '.join(f'{x:.3f}' for x in v)})")
    print(f"median p99 at 70 % collector / otel_sync: {statistics.median(p99s):.3f}")
    return [f"rounds={args.rounds}", f"seconds={args.seconds}",
            f"kafka_vs_otel_sync={med['otel_sync']:.3f}", f"kafka_vs_otel_batch={med['otel_batch']:.3f}",
            f"inprocess_vs_otel_nop={med['otel_nop']:.3f}",
            f"p99_vs_otel={statistics.median(p99s):.3f}"]


__all__ = ["OtlpRequests", "build", "topic_counts", "vs_otel_main"]
