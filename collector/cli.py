"""``streamslo collector``: the production ingest entry point (uvicorn, uvloop, httptools).

Use it for the distributed pipeline; the embedded mode (``streamslo run``)
builds its own app. Keys come from ``--keys FILE`` and/or
``$STREAMSLO_INGEST_KEYS``; regions from the spec. With ``--workers N > 1``
each worker is a separate process with its own rate-limit buckets, and
metrics are merged through ``$PROMETHEUS_MULTIPROC_DIR`` (a temporary
directory is created when unset).

Tracing (docs/telemetry.md) is set up by the app itself, per worker process,
from the standard ``OTEL_*`` variables: off unless an OTLP endpoint is set.

Example::

    STREAMSLO_INGEST_KEYS=k-0123456789 streamslo collector --kafka 127.0.0.1:9092 --port 8080
    export OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.01
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 streamslo collector --kafka 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from typing import Any

from collector.config import CollectorConfig, ConfigError

ARGV_ENV = "STREAMSLO_COLLECTOR_ARGV"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="streamslo collector", description=__doc__.split("\n")[0])
    p.add_argument("--kafka", required=True, metavar="BOOTSTRAP", help="Kafka bootstrap servers")
    p.add_argument("--topic", default=None, help="topic to produce to (default: beacons)")
    p.add_argument("--spec", default=None, help="SLO spec (regions allow-list); default spec if unset")
    p.add_argument("--keys", default=None, metavar="FILE", help="ingest keys, one per line")
    p.add_argument("--no-require-key", action="store_true", help="accept requests without a key")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--rate-per-key", type=float, default=None, help="beacons/s per key and worker (0: off)")
    p.add_argument("--burst-per-key", type=float, default=None)
    p.add_argument("--cors-origin", action="append", default=[], help="allowed browser origin (repeat)")
    p.add_argument("--max-body-bytes", type=int, default=None)
    p.add_argument("--log-level", default="warning")
    return p


def build_config(args: argparse.Namespace) -> CollectorConfig:
    from slo.spec import load_spec

    spec, _ = load_spec(args.spec)
    overrides: dict[str, Any] = {"require_key": not args.no_require_key,
                                 "cors_origins": tuple(args.cors_origin)}
    for name in ("rate_per_key", "burst_per_key", "max_body_bytes"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    cfg = CollectorConfig.from_spec(spec, keys_file=args.keys, **overrides)
    cfg.validate()
    return cfg


def build_app(args: argparse.Namespace) -> Any:
    from collector.app import create_app
    from collector.exporters import KafkaExporter
    from slo import conventions as c

    exporter = KafkaExporter(args.kafka, args.topic or c.TOPIC_BEACONS)
    return create_app(build_config(args), exporter)


def worker_app() -> Any:
    """uvicorn factory for worker processes: rebuilds the app from the parent's argv."""
    return build_app(parser().parse_args(json.loads(os.environ[ARGV_ENV])))


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        build_config(args)  # fail fast, in the parent, with a readable message
    except (ConfigError, OSError, ValueError) as exc:
        print(f"streamslo collector: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    # access_log off: the query string may carry an ingest key (?key=), and
    # keys must never reach a log.
    common: dict[str, Any] = dict(host=args.host, port=args.port, loop="uvloop", http="httptools",
                                  access_log=False, log_level=args.log_level,
                                  server_header=False, date_header=False)
    if args.workers <= 1:
        uvicorn.run(build_app(args), **common)
        return 0
    own_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own_dir = tempfile.mkdtemp(prefix="streamslo-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    os.environ[ARGV_ENV] = json.dumps(argv)
    try:
        uvicorn.run("collector.cli:worker_app", factory=True, workers=args.workers, **common)
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)
    return 0
