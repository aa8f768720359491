"""Free TCP ports and "is this child process serving yet?", for tests and benchmarks.

Use :func:`free_port` to pick a port for a server about to start, and
:func:`wait_for_http` to block until it answers, failing fast (with its log
tail) when the process exits first instead of waiting for the timeout.

    port = free_port()
    proc = subprocess.Popen([..., "--port", str(port)])
    wait_for_http(f"http://127.0.0.1:{port}/readyz", proc)

:func:`serve_in_thread` does the same for an in-process ``uvicorn.Server``.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tail(log: Path | None, lines: int = 30) -> str:
    """The last ``lines`` lines of ``log`` ("" when there is none)."""
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def wait_for_http(
    url: str, proc: subprocess.Popen[bytes] | None = None, *, timeout: float = 60.0,
    body: bytes | None = None, content_type: str = "application/json", log: Path | None = None,
) -> float:
    """Poll ``url`` until it answers 200; return the seconds waited.

    GET, or POST ``body`` (an OpenTelemetry Collector is ready once it accepts
    an empty OTLP request). Raises ``RuntimeError`` as soon as ``proc`` has
    exited and ``TimeoutError`` after ``timeout``, both with ``log``'s tail.
    """
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before {url} answered\n"
                               f"{log_tail(log)}")
        try:
            if body is None:
                status = httpx.get(url, timeout=1.0).status_code
            else:
                status = httpx.post(url, content=body, headers={"content-type": content_type},
                                    timeout=1.0).status_code
            if status == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {timeout}s\n{log_tail(log)}")


def serve_in_thread(server: Any, *, sockets: list[socket.socket] | None = None,
                    timeout: float = 60.0) -> threading.Thread:
    """Run ``server`` (a ``uvicorn.Server``) in a daemon thread; return once it serves.

    Fails at once if the thread ends before the server has started. Stop it
    with ``server.should_exit = True`` and a ``join()`` of the thread.
    """
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    return thread
