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
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from collector.config import CollectorConfig, ConfigError
from slo import limits

ARGV_ENV = "STREAMSLO_COLLECTOR_ARGV"
SERVERS = ("uvicorn", "uvicorn-asgi", "granian")  # the first is the default
UVICORN_OPTIONS: dict[str, Any] = {
    # httptools, with POST /v1/beacons answered without an ASGI task (collector/fastpath.py);
    # --server uvicorn-asgi is plain uvicorn ("httptools"), every request through the ASGI app.
    "loop": "uvloop", "http": "collector.fastpath:IngestProtocol", "server_header": False, "date_header": False,
    # The query string may carry an ingest key (?key=), and keys must never reach a log.
    "access_log": False,
    # Nothing reads the client's address (no access log), and uvicorn's
    # proxy-headers middleware wraps every request: 2 % of its CPU (py-spy).
    "proxy_headers": False,
}
"""How ``streamslo collector`` runs uvicorn; ``bench/bench_ingest.py`` serves its legs the same way."""


def uvicorn_options(server: str = "uvicorn") -> dict[str, Any]:
    """uvicorn's options for ``--server uvicorn`` (the fast path) or ``uvicorn-asgi``."""
    if server == "uvicorn-asgi":
        return {**UVICORN_OPTIONS, "http": "httptools"}
    return dict(UVICORN_OPTIONS)


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
    p.add_argument("--server", choices=SERVERS, default=SERVERS[0],
                   help="HTTP server: uvicorn (uvloop + httptools, the ingest route on a fast path), "
                        "uvicorn-asgi (plain uvicorn) or granian (pip install granian); see docs/collector.md")
    p.add_argument("--rate-per-key", type=float, default=None, help="beacons/s per key and worker (0: off)")
    p.add_argument("--burst-per-key", type=float, default=None)
    p.add_argument("--cors-origin", action="append", default=[], help="allowed browser origin (repeat)")
    p.add_argument("--max-body-bytes", type=int, default=None)
    p.add_argument("--group-linger-ms", type=float, default=0.0,
                   help="group commit: how long a partition's record stays open for more beacons "
                        "(0, the default: until the end of the event-loop iteration); docs/collector.md")
    p.add_argument("--group-max-beacons", type=int, default=16,
                   help=f"group commit: beacons per Kafka record, 1..{limits.MAX_GROUP_BEACONS} (1: off)")
    p.add_argument("--log-level", default="warning")
    return p


def build_config(args: argparse.Namespace) -> CollectorConfig:
    from slo.spec import load_spec_for_cli

    spec, _ = load_spec_for_cli("collector", args.spec)
    overrides: dict[str, Any] = {"require_key": not args.no_require_key,
                                 "cors_origins": tuple(args.cors_origin)}
    for name in ("rate_per_key", "burst_per_key", "max_body_bytes"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    cfg = CollectorConfig.from_spec(spec, keys_file=args.keys, **overrides)
    cfg.validate()
    if not 1 <= args.group_max_beacons <= limits.MAX_GROUP_BEACONS:
        raise ConfigError([f"--group-max-beacons must be 1..{limits.MAX_GROUP_BEACONS}, "
                           f"got {args.group_max_beacons}"])
    if not 0 <= args.group_linger_ms <= 100:
        raise ConfigError([f"--group-linger-ms must be 0..100, got {args.group_linger_ms}"])
    return cfg


def build_app(args: argparse.Namespace) -> Any:
    from collector.app import create_app
    from collector.exporters import KafkaExporter
    from slo import conventions as c

    exporter = KafkaExporter(args.kafka, args.topic or c.TOPIC_BEACONS,
                             group_linger_s=args.group_linger_ms / 1000,
                             group_max_beacons=args.group_max_beacons)
    return create_app(build_config(args), exporter)


def worker_app() -> Any:
    """Server factory for worker processes: rebuilds the app from the parent's argv."""
    return build_app(parser().parse_args(json.loads(os.environ[ARGV_ENV])))


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        build_config(args)  # fail fast, in the parent, with a readable message
    except (ConfigError, OSError, ValueError) as exc:
        print(f"streamslo collector: {exc}", file=sys.stderr)
        return 2
    if args.server == "granian":
        return _run_granian(args, argv)
    import uvicorn

    common: dict[str, Any] = dict(host=args.host, port=args.port, log_level=args.log_level,
                                  **uvicorn_options(args.server))
    if args.workers <= 1:
        uvicorn.run(build_app(args), **common)
        return 0
    with _multiprocess_metrics(argv):
        uvicorn.run("collector.cli:worker_app", factory=True, workers=args.workers, **common)
    return 0


@contextlib.contextmanager
def _multiprocess_metrics(argv: list[str]) -> Iterator[None]:
    """Workers rebuild the app from ``argv``; their metrics merge in ``$PROMETHEUS_MULTIPROC_DIR``."""
    own_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own_dir = tempfile.mkdtemp(prefix="streamslo-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    os.environ[ARGV_ENV] = json.dumps(argv)
    try:
        yield
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)


def _run_granian(args: argparse.Namespace, argv: list[str]) -> int:
    """Serve with granian (ASGI, uvloop); it always loads the app by name in its workers."""
    try:
        from granian.constants import Interfaces, Loops
        from granian.log import LogLevels
        from granian.server import Server
    except ImportError:
        print("streamslo collector: --server granian needs `pip install granian`", file=sys.stderr)
        return 2
    single = args.workers <= 1
    with contextlib.nullcontext() if single else _multiprocess_metrics(argv):
        os.environ[ARGV_ENV] = json.dumps(argv)
        Server("collector.cli:worker_app", address=args.host, port=args.port,
               interface=Interfaces.ASGI, workers=max(1, args.workers), loop=Loops.uvloop,
               factory=True, log_level=LogLevels(args.log_level), log_access=False).serve()
    return 0
