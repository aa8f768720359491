"""The servers of ``bench/bench_ingest.py``'s legs, each run as a child process by that script.

Legs: ``floor`` (raw ASGI, uvicorn's own cost), ``floor_protocol`` (httptools
on a bare asyncio protocol: what is left without a server framework), ``pydantic`` / ``pydantic_kafka``
(the FastAPI + pydantic baseline, without or with aiokafka ``send_and_wait``),
``inprocess`` / ``kafka`` and their ``*_traced`` twins (this collector, as
``streamslo collector`` serves it), and the ``kafka`` leg's exporter variants
(:data:`KAFKA_VARIANTS`: group commit off, a 1 ms group linger, the old
librdkafka linger). One worker, pinned to CPU 0 unless ``--no-pin``.

    python bench/ingest_servers.py kafka --port 8081 --kafka 127.0.0.1:9092 --server uvicorn

A leg of another revision (``kafka@HEAD~1``, see ``bench/revisions.py``) sets
``BENCH_SRC`` to a directory holding that revision's ``collector``, ``slo`` and
``streamslo``: :func:`use_bench_src` puts it first on ``sys.path`` before any
of them is imported, so both legs of a pair run this same server code on
different collector code. It is the only ``sys.path`` change in ``bench/``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any, Literal

from loadgen import KEY
from pydantic import BaseModel

TOPIC = "bench-beacons"
SERVERS = ("uvicorn", "uvicorn-asgi", "granian", "granian-st")
"""``uvicorn``: as ``streamslo collector`` serves (the ingest fast path where that revision has it)."""


def use_bench_src() -> None:
    """Import ``collector``/``slo``/``streamslo`` from ``$BENCH_SRC`` (an older revision) if set."""
    src = os.environ.get("BENCH_SRC")
    if src and src not in sys.path:
        sys.path.insert(0, src)


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


_FLOOR_ANSWERS = {ready: status + b"\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}"
                  for ready, status in ((True, b"HTTP/1.1 200 OK"), (False, b"HTTP/1.1 202 Accepted"))}


class FloorProtocol(asyncio.Protocol):
    """``floor_protocol``: httptools and a socket, no server framework: answers 202 (200 to GETs)."""

    def connection_made(self, transport: Any) -> None:
        import httptools

        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        ready = self.parser.get_method() == b"GET"  # GET /readyz: ready
        self.transport.write(_FLOOR_ANSWERS[ready])


def serve_floor_protocol(port: int) -> None:
    import uvloop

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(FloorProtocol, "127.0.0.1", port)
        await server.serve_forever()

    uvloop.run(main())


# Variants of the kafka leg: the exporter options they change (``--paired kafka,kafka_nogroup``).
KAFKA_VARIANTS: dict[str, dict[str, Any]] = {
    "kafka_nogroup": {"group_max_beacons": 1},  # one beacon per record, as before group commit
    "kafka_linger1ms": {"group_linger_s": 0.001},  # a group stays open 1 ms (the default: one loop iteration)
    "kafka_linger5": {"linger.ms": 5},  # librdkafka's linger as before group commit
    "kafka_nocompress": {"compression.type": "none"},  # what lz4 costs (the OTel legs compress too)
}


def collector_app(kafka: str | None, leg: str = "kafka") -> Any:
    from collector.app import create_app
    from collector.config import CollectorConfig
    from collector.exporters import InProcessExporter, KafkaExporter

    cfg = CollectorConfig(regions=("eu-west-1", "us-east-1"), keys=frozenset({KEY}), rate_per_key=0)
    topic = os.environ.get("BENCH_TOPIC", TOPIC)  # --vs-otel: a fresh topic per round, for exact counts
    options = KAFKA_VARIANTS.get(leg, {})
    exporter = KafkaExporter(kafka, topic, **options) if kafka else InProcessExporter(lambda b: None)
    return create_app(cfg, exporter)


def needs_kafka(leg: str) -> bool:
    return leg.startswith("kafka") or leg == "pydantic_kafka"


def make_app(leg: str, kafka: str | None) -> Any:
    if leg == "floor":
        return floor_app
    if leg.startswith("pydantic"):
        return pydantic_app(kafka if leg == "pydantic_kafka" else None)
    # Tracing (the *_traced legs) is set up by the app's lifespan from the OTEL_* environment.
    return collector_app(kafka if leg.startswith("kafka") else None, leg)


def granian_factory() -> Any:
    """Import target for granian (it loads the app by name in its worker, from ``bench/``)."""
    use_bench_src()
    return make_app(os.environ["BENCH_LEG"], os.environ.get("BENCH_KAFKA") or None)


def serve(leg: str, port: int, kafka: str | None, pin: bool, server: str) -> None:
    if pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})  # inherited by granian's worker and threads
    if leg == "floor_protocol":
        serve_floor_protocol(port)
        return
    if server.startswith("granian"):
        from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes, TaskImpl
        from granian.log import LogLevels
        from granian.server import Server

        os.environ["BENCH_LEG"], os.environ["BENCH_KAFKA"] = leg, kafka or ""
        # "granian-st": HTTP/1 only, single-threaded runtime, Rust task implementation.
        tuned: dict[str, Any] = ({"http": HTTPModes.http1, "runtime_mode": RuntimeModes.st,
                                  "task_impl": TaskImpl.rust} if server == "granian-st" else {})
        Server("ingest_servers:granian_factory", address="127.0.0.1", port=port,
               interface=Interfaces.ASGI, workers=1, loop=Loops.uvloop, factory=True,
               log_level=LogLevels.warning, working_dir=Path(__file__).resolve().parent,
               **tuned).serve()
        return
    import uvicorn

    options: dict[str, Any] = {"loop": "uvloop", "http": "httptools", "access_log": False,
                               "server_header": False, "date_header": False}
    if leg in ("inprocess", "kafka", "inprocess_traced", "kafka_traced", *KAFKA_VARIANTS):
        try:  # as `streamslo collector` runs it (at this leg's revision, for a leg "kafka@REV")
            from collector.cli import UVICORN_OPTIONS
        except ImportError:
            pass
        else:
            options = dict(UVICORN_OPTIONS)
    if server == "uvicorn-asgi":  # plain uvicorn: every request through the ASGI app
        options = {**options, "http": "httptools"}
    uvicorn.run(make_app(leg, kafka), host="127.0.0.1", port=port, log_level="warning", **options)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("leg")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--kafka", default=None)
    p.add_argument("--server", choices=SERVERS, default="uvicorn")
    p.add_argument("--no-pin", action="store_true")
    args = p.parse_args(argv)
    use_bench_src()
    serve(args.leg, args.port, args.kafka, not args.no_pin, args.server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
