"""Real Prometheus and Alertmanager processes for tests, on free 127.0.0.1 ports.

The processes are :func:`streamslo.testing.prometheus.start_server` (benchmarks
use it too). Use the ``prometheus_server`` / ``alertmanager_server`` factory fixtures: each
call starts one process with the given config and returns a handle with its
``url``; every process is stopped (terminate, then kill) at teardown. Tests
that use them are marked ``@pytest.mark.prometheus`` and are skipped, with the
reason, when the Debian binaries are missing (``scripts/install-deps.sh``).

    def test_x(prometheus_server):
        prom = prometheus_server(config_text, rule_files={"rules.yml": text})
        httpx.get(f"{prom.url}/api/v1/query", params={"query": "up"})
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streamslo.testing.ports import free_port
from streamslo.testing.prometheus import (
    ALERTMANAGER,
    PROMETHEUS,
    Server,
    start_server,
)

__all__ = ["require"]


def require(binary: str | None, name: str) -> str:
    """The binary path, or skip the test saying which package is missing."""
    if binary is None:
        pytest.skip(f"{name} not installed (Debian package; run scripts/install-deps.sh)")
    return binary


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
        server = start_server("prometheus", argv, f"http://127.0.0.1:{port}", home / "prometheus.log")
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
        server = start_server("alertmanager", argv, f"http://127.0.0.1:{port}", home / "alertmanager.log")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
