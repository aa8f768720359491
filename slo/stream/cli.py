"""``streamslo worker``: run one Faust stream worker (stage 1 and stage 2).

Example::

    streamslo worker --kafka 127.0.0.1:9092 --web-port 6066
    curl -s 127.0.0.1:6066/metrics | grep streamslo_latency_quantile_seconds

Run several workers with the same ``--kafka`` to split the partitions between
them; each serves ``/metrics`` for the regions it owns.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
from pathlib import Path

from slo import conventions as c
from slo.spec import SpecError, load_spec_for_cli
from slo.stream.exits import EXIT_CONFIG, EXIT_OK
from slo.stream.settings import Settings


def parse_args(argv: list[str]) -> argparse.Namespace:
    d = Settings.__dataclass_fields__
    p = argparse.ArgumentParser(prog="streamslo worker", description=__doc__.split("\n")[0])
    p.add_argument("--kafka", required=True, metavar="BOOTSTRAP", help="host:port of a broker")
    p.add_argument("--spec", type=Path, default=None, help="SLO spec file (default: built-in)")
    p.add_argument("--web-port", type=int, default=d["web_port"].default, help="/metrics port")
    p.add_argument("--web-host", default=d["web_host"].default)
    p.add_argument("--data-dir", type=Path, default=d["data_dir"].default)
    p.add_argument("--pane", type=float, default=None, help="pane width in seconds (default: spec)")
    p.add_argument("--flush-interval", type=float, default=d["flush_interval_s"].default,
                   help="seconds between stage-1 cuts (default %(default)s)")
    p.add_argument("--beacons-partitions", type=int, default=d["beacons_partitions"].default,
                   help="partitions when this worker creates the beacons topic")
    p.add_argument("--partials-partitions", type=int, default=d["partials_partitions"].default)
    p.add_argument("--dedup-records", type=int, default=d["dedup_records"].default,
                   help="a retry is a duplicate within this many records of its partition")
    p.add_argument("--session-timeout", type=float, default=d["session_timeout_s"].default)
    p.add_argument("--worker-id", default=None, help="name in logs and client ids")
    p.add_argument("--dead-letter", action="store_true",
                   help=f"copy skipped records and bundles to the {c.TOPIC_DEAD_LETTER} topic")
    p.add_argument("--stage1-in-process", action="store_true",
                   help="run stage 1 in the Faust process instead of a child process")
    p.add_argument("--loglevel", default="warning")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        spec, _ = load_spec_for_cli("worker", args.spec)
    except SpecError as exc:
        print(f"streamslo worker: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.pane is not None:
        spec = dataclasses.replace(spec, pane_s=args.pane)
    extra = {"worker_id": args.worker_id} if args.worker_id else {}
    settings = Settings(
        bootstrap=args.kafka, spec=spec, web_port=args.web_port, web_host=args.web_host,
        data_dir=args.data_dir, flush_interval_s=args.flush_interval,
        beacons_partitions=args.beacons_partitions, partials_partitions=args.partials_partitions,
        dedup_records=args.dedup_records, session_timeout_s=args.session_timeout,
        stage1_process=not args.stage1_in_process, dead_letter=args.dead_letter, **extra,
    )
    # Imported late: Faust is heavy and only this subcommand needs it.
    import faust

    from slo.stream.app import build_app
    from slo.stream.topics import ensure_topics

    logging.basicConfig(level=args.loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    counts = asyncio.run(
        ensure_topics(args.kafka, beacons=args.beacons_partitions, partials=args.partials_partitions,
                      dead_letter=args.dead_letter)
    )
    if counts.get("slo-partials", args.partials_partitions) != args.partials_partitions:
        settings = dataclasses.replace(settings, partials_partitions=counts["slo-partials"])
    app = build_app(settings)
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else EXIT_CONFIG
    else:
        code = EXIT_OK
    # A worker that stopped itself (stage 1 died) must not look like a clean stop.
    return app.streamslo.exit_code or code  # type: ignore[attr-defined]
