"""``streamslo collector`` as a real process: config errors, and metrics merged across workers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from collector.cli import main
from streamslo.testing.ports import free_port, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
KEY = "cli-key-0123456789"


@pytest.mark.parametrize(
    ("argv", "env_keys", "message"),
    [(["--kafka", "127.0.0.1:1"], "", "no ingest keys"),
     (["--kafka", "127.0.0.1:1", "--max-body-bytes", "10"], KEY, "max_body_bytes"),
     (["--kafka", "127.0.0.1:1", "--group-max-beacons", "0"], KEY, "--group-max-beacons must be 1..64"),
     (["--kafka", "127.0.0.1:1", "--group-max-beacons", "65"], KEY, "--group-max-beacons must be 1..64"),
     (["--kafka", "127.0.0.1:1", "--group-linger-ms", "-1"], KEY, "--group-linger-ms must be 0..100")],
    ids=["without keys the collector refuses to start", "a tiny body cap is a config error",
         "a group of no beacons is a config error", "a group past stage 1's limit is a config error",
         "a negative group linger is a config error"],
)
def test_config_errors_exit_2_with_a_message(
    argv: list[str], env_keys: str, message: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STREAMSLO_INGEST_KEYS", env_keys)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("server", [
    pytest.param("uvicorn", id="uvicorn (the default)"),
    pytest.param("granian", id="granian (--server granian)", marks=pytest.mark.skipif(
        not _installed("granian"), reason="granian is optional: pip install granian")),
])
def test_two_workers_count_every_request_in_one_metrics_view(tmp_path: Path, server: str) -> None:
    """Requests spread over worker processes; /metrics (any worker) sums them all.

    Kafka is deliberately unreachable: refusals (401) and 503s need no broker.
    """
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "STREAMSLO_INGEST_KEYS": KEY,
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamslo.cli", "collector", "--kafka", "127.0.0.1:1",
         "--port", str(port), "--workers", "2", "--server", server], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/healthz", proc)
        sent = 40
        for _ in range(sent):  # one connection per request, so both workers get some
            r = httpx.post(f"{base}/v1/beacons?key=wrong-key-000", content=b"{}", timeout=5)
            assert r.status_code == 401
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 503  # Kafka unreachable
        text = httpx.get(f"{base}/metrics", timeout=5).text
        m = re.search(r'^streamslo_collector_refused_total\{reason="unauthorized"\} (\S+)$', text, re.M)
        assert m is not None, text[:2000]
        assert float(m.group(1)) == sent
        assert len(list(tmp_path.glob("counter_*.db"))) >= 2  # really two processes
    finally:
        proc.terminate()
        proc.wait(20)
