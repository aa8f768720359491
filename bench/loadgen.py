"""A loopback HTTP/1.1 load generator on raw asyncio protocols, cheap enough to saturate one server core.

Use :func:`run_load` to drive a server on 127.0.0.1 with ``concurrency``
keep-alive connections, closed loop (as fast as it answers) or open loop at a
fixed rate (latency from each request's scheduled send time, so queueing
counts), and :func:`measured` to charge the same phase with the server's own
CPU (``cpu_accounting``), not the load generator's. Every phase is bounded by
a request count and a time. :class:`Requests` yields unique 20-event beacons.

    reqs = Requests()
    res = measured(proc.pid, run_load(port, 64, 5.0, 200_000, None, reqs))
    res["rps"], res["per_cpu_s"], res["p99"]
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

import numpy as np
from cpu_accounting import cpu_seconds

KEY = "bench-key-0123456789"
EVENTS = 20


class Requests:
    """Unique 20-event beacons as ready-to-write HTTP/1.1 requests."""

    def __init__(self) -> None:
        now = time.time()
        events = ",".join(
            f'{{"type":"{"first_frame" if i % 4 == 0 else "interaction"}","ts":{now - 5 + i * 0.1:.3f},'
            f'"value_ms":{50 + i * 7.5}}}' for i in range(EVENTS))
        self._prefix = b'{"v":1,"session_id":"bench-'
        self._middle = b'","seq":'
        self._suffix = (f',"sent_at":{now:.3f},"region":"eu-west-1","sdk":"bench/1",'
                        f'"kind":"rum","events":[{events}]}}').encode()
        self._head = (b"POST /v1/beacons HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nX-Ingest-Key: " + KEY.encode() +
                      b"\r\nContent-Length: ")
        self.n = 0

    def next(self) -> bytes:
        self.n += 1
        body = b"%s%d%s%d%s" % (self._prefix, self.n % 997, self._middle, self.n, self._suffix)
        return b"%s%d\r\n\r\n%s" % (self._head, len(body), body)


class Conn(asyncio.Protocol):
    """One keep-alive connection; ``request()`` resolves with the status code."""

    def __init__(self) -> None:
        self.buf = b""
        self.fut: asyncio.Future[int] | None = None
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].lower()
        i = head.find(b"content-length:")
        length = int(head[i + 15:head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0 else None]) if i >= 0 else 0
        if len(self.buf) < end + 4 + length:
            return
        status = int(self.buf[9:12])
        self.buf = self.buf[end + 4 + length:]
        if self.fut is not None and not self.fut.done():
            self.fut.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(ConnectionError("closed"))

    async def request(self, data: bytes) -> int:
        self.fut = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.fut


async def run_load(port: int, concurrency: int, seconds: float, max_requests: int,
                   rate: float | None, reqs: Any) -> dict[str, Any]:
    """Closed loop (rate None) or open loop at ``rate``/s; returns rate and latency figures."""
    loop = asyncio.get_running_loop()
    conns = [(await loop.create_connection(Conn, "127.0.0.1", port))[1] for _ in range(concurrency)]
    lat: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter()
    deadline = start + seconds
    counter = iter(range(max_requests))

    async def worker(conn: Conn) -> None:
        for k in counter:
            if rate is None:
                t0 = time.perf_counter()
            else:
                t0 = start + k / rate  # scheduled time: queueing delay counts
                wait = t0 - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
            if t0 > deadline:
                return
            status = await conn.request(reqs.next())
            lat.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - start
    for c in conns:
        c.transport.close()
    a = np.array(lat) * 1000.0
    return {"n": len(lat), "rps": len(lat) / elapsed, "elapsed": elapsed, "p50": float(np.percentile(a, 50)),
            "p99": float(np.percentile(a, 99)), "statuses": statuses}


def measured(pid: int, phase: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """Run a load phase and add the server's beacons per CPU-second (robust to a shared machine)."""
    cpu0 = cpu_seconds(pid)
    result: dict[str, Any] = asyncio.run(phase)
    cpu = cpu_seconds(pid) - cpu0
    result["per_cpu_s"] = result["n"] / cpu if cpu > 0 else float("nan")
    result["cpu_util"] = cpu / result["elapsed"]
    return result
