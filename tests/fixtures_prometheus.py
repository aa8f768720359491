"""Real Prometheus and Alertmanager processes for tests, on free 127.0.0.1 ports.

Use the ``prometheus_server`` / ``alertmanager_server`` factory fixtures: each
call starts one process with the given config and returns a handle with its
``url``; every process is stopped (terminate, then kill) at teardown. Tests
that use them are marked ``@pytest.mark.prometheus`` and are skipped, with the
reason, when the Debian binaries are missing (``scripts/install-deps.sh``).

    def test_x(prometheus_server):
        prom = prometheus_server(config_text, rule_files={"rules.yml": text})
        httpx.get(f"{prom.url}/api/v1/query", params={"query": "up"})
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require(binary: str | None, name: str) -> str:
    """The binary path, or skip the test saying which package is missing."""
    if binary is None:
        pytest.skip(f"{name} not installed (Debian package; run scripts/install-deps.sh)")
    return binary


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


def _start(name: str, argv: list[str], url: str, log: Path, timeout_s: float = 30.0) -> Server:
    handle = log.open("wb")
    process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT)
    server = Server(name, url, process, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(f"{url}/-/ready", timeout=1.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{name} not ready after {timeout_s}s:\n{server.log_tail()}")


@pytest.fixture
def prometheus_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Factory: ``prometheus_server(config_yaml, rule_files={name: text})`` -> Server."""
    binary = require(PROMETHEUS, "prometheus")
    started: list[Server] = []

    def start(config: str, rule_files: dict[str, str] | None = None) -> Server:
        home = tmp_path / f"prometheus-{len(started)}"
        home.mkdir()
        for name, text in (rule_files or {}).items():
            (home / name).write_text(text)
        (home / "prometheus.yml").write_text(config)
        port = free_port()
        argv = [
            binary,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            # Resend firing alerts every second so the end-to-end test sees
            # resolutions promptly (default 1m).
            "--rules.alert.resend-delay=1s",
        ]
        server = _start("prometheus", argv, f"http://127.0.0.1:{port}", home / "prometheus.log")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def alertmanager_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Factory: ``alertmanager_server(config_yaml)`` -> Server (clustering off)."""
    binary = require(ALERTMANAGER, "prometheus-alertmanager")
    started: list[Server] = []

    def start(config: str) -> Server:
        home = tmp_path / f"alertmanager-{len(started)}"
        home.mkdir()
        (home / "alertmanager.yml").write_text(config)
        port = free_port()
        argv = [
            binary,
            f"--config.file={home / 'alertmanager.yml'}",
            f"--storage.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ]
        server = _start("alertmanager", argv, f"http://127.0.0.1:{port}", home / "alertmanager.log")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
