"""``streamslo probe``: a synthetic viewer that measures what a real one waits for.

Each round the probe, like a new viewer, opens a fresh connection to the
origin/CDN (``--target``, an HLS playlist URL), fetches the playlist (following
the first variant of a master playlist), fetches the first media segment and
reports the elapsed time as a ``first_frame`` event (an fMP4 stream's
``#EXT-X-MAP`` init segment is fetched too: a player needs it first). With ``--echo`` it also
times one HTTP round trip against an echo endpoint and reports it as an
``interaction`` event. Failures are reported too: a playlist or segment that
cannot be fetched is a fatal ``error`` event (a failed start). The
events go to the collector as a v1 beacon with ``kind="probe"``, so they are
labelled apart from real users and never dilute their percentiles.

When to use: run one probe per region next to your players (cron, a sidecar,
a Kubernetes CronJob); in tests, bound the run with ``--count``.

Example::

    streamslo probe --target https://cdn.example/live/index.m3u8 \\
        --region eu-west-1 --collector http://127.0.0.1:8080 --interval 10

Exit status: 0 when every beacon was accepted by the collector (probe
failures against the target are data, not probe failures), 1 otherwise.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpx

from slo import conventions as c

SDK = "streamslo-probe/0.1.0"
BEACON_PATH = "/v1/beacons"
# Retry a refused report (429/503) a few times with the same (session_id, seq):
# the collector counts a retried beacon once.
MAX_REPORT_ATTEMPTS = 4


class PlaylistError(ValueError):
    """The playlist has no usable variant or segment URI."""


def first_uri(playlist: str) -> tuple[str, bool]:
    """Return ``(uri, is_variant)``: the first URI line of an HLS playlist.

    A master playlist lists variants after ``#EXT-X-STREAM-INF`` tags
    (``is_variant`` True); a media playlist lists segments after ``#EXTINF``.

    >>> first_uri("#EXTM3U\\n#EXTINF:2.0,\\nseg0.ts\\n")
    ('seg0.ts', False)
    """
    lines = [line.strip() for line in playlist.splitlines()]
    if not lines or not lines[0].startswith("#EXTM3U"):
        raise PlaylistError("not an HLS playlist (missing #EXTM3U)")
    is_master = any(line.startswith("#EXT-X-STREAM-INF") for line in lines)
    for line in lines[1:]:
        if line and not line.startswith("#"):
            return line, is_master
    raise PlaylistError("playlist lists no segment or variant URI")


_MAP_URI = re.compile(r'^#EXT-X-MAP:.*?\bURI="([^"]+)"')


def init_uri(playlist: str) -> str | None:
    r"""The ``#EXT-X-MAP`` init segment (fMP4/CMAF) a player needs before the first segment.

    >>> init_uri('#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:2,\ns0.m4s\n')
    'init.mp4'
    """
    for line in playlist.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return None  # a map after the first segment does not apply to it
        match = _MAP_URI.match(line)
        if match:
            return match.group(1)
    return None


@dataclass
class Measurement:
    """What one probe round saw; ``events`` are v1 wire events."""

    events: list[dict[str, Any]] = field(default_factory=list)
    ttff_ms: float | None = None
    rtt_ms: float | None = None
    error: str | None = None


def measure_ttff(client: httpx.Client, target: str) -> tuple[float, str]:
    """Fetch playlist (and variant), init segment if any, first segment; return ``(ms, segment_url)``.

    The timer covers connection setup too: a viewer pays for it.
    """
    start = time.perf_counter()
    url = target
    for _ in range(3):  # master -> media playlist; never loop on a bad origin
        response = client.get(url)
        response.raise_for_status()
        uri, is_variant = first_uri(response.text)
        base, url = str(response.url), urljoin(str(response.url), uri)
        if not is_variant:
            break
    else:
        raise PlaylistError("too many nested master playlists")
    init = init_uri(response.text)
    if init is not None:
        client.get(urljoin(base, init)).raise_for_status()
    segment = client.get(url)
    segment.raise_for_status()
    if not segment.content:
        raise PlaylistError(f"empty media segment {url}")
    return (time.perf_counter() - start) * 1000.0, url


def measure_rtt(client: httpx.Client, echo: str) -> float:
    """Time one POST round trip to an echo endpoint, in milliseconds."""
    start = time.perf_counter()
    response = client.post(echo, content=b'{"probe":"ping"}', headers={"content-type": "application/json"})
    response.raise_for_status()
    return (time.perf_counter() - start) * 1000.0


def _error_code(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"PROBE_HTTP_{exc.response.status_code}"
    if isinstance(exc, httpx.TimeoutException):
        return "PROBE_TIMEOUT"
    if isinstance(exc, httpx.TransportError):
        return "PROBE_NETWORK"
    if isinstance(exc, PlaylistError):
        return "PROBE_BAD_PLAYLIST"
    return "PROBE_FAILED"


def probe_once(target: str, echo: str | None, timeout: float) -> Measurement:
    """Run one round against the target (and echo) with fresh connections."""
    result = Measurement()
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        try:
            result.ttff_ms, _ = measure_ttff(client, target)
            result.events.append({"type": c.EVENT_FIRST_FRAME, "ts": time.time(), "value_ms": round(result.ttff_ms, 3)})
        except (httpx.HTTPError, PlaylistError) as exc:
            result.error = f"{_error_code(exc)}: {exc}"
            result.events.append({"type": c.EVENT_ERROR, "ts": time.time(), "code": _error_code(exc), "fatal": True})
        if echo:
            try:
                result.rtt_ms = measure_rtt(client, echo)
                result.events.append(
                    {"type": c.EVENT_INTERACTION, "ts": time.time(), "value_ms": round(result.rtt_ms, 3), "name": "probe_echo"}
                )
            except httpx.HTTPError as exc:
                # A failed round trip is not a failed playback start: not fatal.
                result.events.append({"type": c.EVENT_ERROR, "ts": time.time(), "code": _error_code(exc), "fatal": False})
    return result


def beacon_url(collector: str) -> str:
    """The collector's beacon endpoint: accepts a base URL or the full path."""
    url = collector.rstrip("/")
    if not url.endswith(BEACON_PATH):
        url += BEACON_PATH
    return url


def report(
    client: httpx.Client, url: str, beacon: dict[str, Any], key: str | None, sleep: Callable[[float], None] = time.sleep
) -> int:
    """POST one beacon, retrying 429/503/network errors; return the last status (0: no answer)."""
    headers = {"X-Ingest-Key": key} if key else {}
    status = 0
    for attempt in range(MAX_REPORT_ATTEMPTS):
        beacon["sent_at"] = time.time()
        try:
            response = client.post(url, json=beacon, headers=headers)
        except httpx.TransportError:
            status = 0
            sleep(0.2 * 2**attempt)
            continue
        status = response.status_code
        if status not in (429, 503):
            return status
        sleep(min(float(response.headers.get("retry-after", "1") or 1), 5.0))
    return status


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="streamslo probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="HLS playlist URL (master or media)")
    parser.add_argument("--region", required=True, help="region label the samples are reported under")
    parser.add_argument("--collector", required=True, help="collector base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--key", default=None, help="ingest key (sent as X-Ingest-Key)")
    parser.add_argument("--echo", default=None, help="HTTP echo endpoint for the interaction round trip")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between rounds (default 10)")
    parser.add_argument("--count", type=int, default=0, help="stop after N rounds (default: run forever)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds")
    args = parser.parse_args(argv)

    session_id = f"probe-{args.region}-{uuid.uuid4().hex[:12]}"
    url = beacon_url(args.collector)
    failures = 0
    seq = 0
    with httpx.Client(timeout=args.timeout) as collector:
        while args.count <= 0 or seq < args.count:
            started = time.monotonic()
            seq += 1
            m = probe_once(args.target, args.echo, args.timeout)
            beacon = {
                "v": 1,
                "session_id": session_id,
                "seq": seq,
                "sent_at": time.time(),
                "region": args.region,
                "sdk": SDK,
                "kind": c.KIND_PROBE,
                "events": m.events,
            }
            status = report(collector, url, beacon, args.key)
            ok = 200 <= status < 300
            failures += not ok
            ttff = f"{m.ttff_ms:.1f}" if m.ttff_ms is not None else "-"
            rtt = f"{m.rtt_ms:.1f}" if m.rtt_ms is not None else "-"
            print(f"probe seq={seq} region={args.region} ttff_ms={ttff} rtt_ms={rtt} report={status}"
                  + (f" error={m.error!r}" if m.error else ""), flush=True)
            if args.count > 0 and seq >= args.count:
                break
            time.sleep(max(0.0, args.interval - (time.monotonic() - started)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
