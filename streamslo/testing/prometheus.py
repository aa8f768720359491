"""Real Prometheus and Alertmanager processes on free 127.0.0.1 ports, for tests and benchmarks.

The binaries are the Debian packages (``scripts/install-deps.sh``); each
constant below is None when its binary is missing. :func:`start_server`
launches one process and returns once it answers ``/-/ready``; the pytest
fixtures around it are in ``tests/fixtures_prometheus.py``.

    server = start_server("prometheus", [PROMETHEUS, ..., f"--web.listen-address=127.0.0.1:{port}"],
                          f"http://127.0.0.1:{port}", home / "prometheus.log")
    ...
    server.stop()
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from streamslo.testing.ports import wait_for_http

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")


@dataclass
class Server:
    """A running process and where it listens."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start_server(name: str, argv: list[str], url: str, log: Path, timeout_s: float = 30.0) -> Server:
    """Start ``argv`` with its output in ``log``; return once ``url/-/ready`` answers 200."""
    with log.open("wb") as handle:
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT)
    server = Server(name, url, process, log)
    try:
        wait_for_http(f"{url}/-/ready", process, timeout=timeout_s, log=log)
    except (RuntimeError, TimeoutError):
        server.stop()
        raise
    return server
