"""Command line for the development broker: ``fetch`` its jars, ``start`` or ``stop`` one.

The broker itself is :class:`streamslo.testing.kafka.KafkaBroker` (tests and
benchmarks use it from Python); this script only gives it a command line::

    python scripts/kafka.py fetch                       # jars into the cache (idempotent)
    python scripts/kafka.py start --port 9092 --dir /tmp/kafka   # detached; prints bootstrap
    python scripts/kafka.py stop --dir /tmp/kafka       # SIGTERM by the PID file
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from streamslo.testing.kafka import KafkaBroker, fetch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kafka.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch", help="download the broker jars into the cache")
    p_start = sub.add_parser("start", help="start a detached broker")
    p_start.add_argument("--port", type=int, default=9092)
    p_start.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "streamslo-kafka")
    p_stop = sub.add_parser("stop", help="stop the broker whose PID file is in --dir")
    p_stop.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "streamslo-kafka")
    args = parser.parse_args(argv)
    if args.cmd == "fetch":
        print(f"kafka: jars in {fetch()}")
        return 0
    if args.cmd == "start":
        args.dir.mkdir(parents=True, exist_ok=True)
        broker = KafkaBroker(port=args.port, workdir=args.dir).start()
        print(broker.bootstrap)
        return 0
    pid_file = args.dir / "kafka.pid"
    if not pid_file.exists():
        print(f"kafka: no PID file in {args.dir}", file=sys.stderr)
        return 1
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink()
        return 0
    for _ in range(300):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    print(f"kafka: stopped pid {pid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
