"""``streamslo probe`` against a local HLS origin and echo endpoint, reporting into ``streamslo run``.

The origin is a real HTTP server on 127.0.0.1 serving a master playlist, a
media playlist and a segment (the segment response is delayed, so the probe's
time to first segment has a known floor); the collector is a real
``streamslo run`` subprocess; the samples are read back from its ``/metrics``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from slo import conventions as c
from streamslo.probe import PlaylistError, first_uri, init_uri, measure_ttff
from tests.conftest import ROOT
from tests.test_embedded import embedded_server, sample

SEGMENT_DELAY_S = 0.06
MASTER = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nlow/index.m3u8\n"
MEDIA = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:2.0,\nseg7.ts\n#EXTINF:2.0,\nseg8.ts\n"


CMAF = '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:2.0,\nchunk1.m4s\n'


class Origin(BaseHTTPRequestHandler):
    """A tiny HLS origin (MPEG-TS and fMP4 renditions) plus an echo endpoint."""

    requested: list[str] = []  # noqa: RUF012 - shared by the handler instances on purpose

    def do_GET(self) -> None:
        Origin.requested.append(self.path)
        routes = {
            "/live/master.m3u8": (MASTER.encode(), "application/vnd.apple.mpegurl"),
            "/live/low/index.m3u8": (MEDIA.encode(), "application/vnd.apple.mpegurl"),
            "/live/low/seg7.ts": (b"\x47" * 188 * 20, "video/mp2t"),  # 20 MPEG-TS packets
            "/cmaf/index.m3u8": (CMAF.encode(), "application/vnd.apple.mpegurl"),
            "/cmaf/init.mp4": (b"\x00\x00\x00\x18ftypcmfc", "video/mp4"),
            "/cmaf/chunk1.m4s": (b"\x00" * 4096, "video/iso.segment"),
        }
        if self.path not in routes:
            self.send_error(404)
            return
        body, content_type = routes[self.path]
        if self.path.endswith(".ts"):
            time.sleep(SEGMENT_DELAY_S)
        self._reply(body, content_type)

    def do_POST(self) -> None:
        if self.path != "/echo":
            self.send_error(404)
            return
        self._reply(self.rfile.read(int(self.headers.get("content-length", 0))), "application/json")

    def _reply(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


PLAYLISTS = [
    ("#EXTM3U\n#EXTINF:2.0,\nseg0.ts\n", ("seg0.ts", False), "a media playlist yields its first segment"),
    (MASTER, ("low/index.m3u8", True), "a master playlist yields its first variant"),
    ("#EXTM3U\r\n#EXT-X-VERSION:3\r\n\r\n#EXTINF:2,\r\nhttps://cdn/s.ts\r\n", ("https://cdn/s.ts", False), "CRLF lines and absolute URIs are fine"),
    ("<html>404</html>", None, "an HTML error page is not a playlist"),
    ("#EXTM3U\n#EXT-X-ENDLIST\n", None, "a playlist without URIs is refused"),
]


@pytest.mark.parametrize(("text", "expected"), [p[:2] for p in PLAYLISTS], ids=[p[2] for p in PLAYLISTS])
def test_first_uri(text: str, expected: tuple[str, bool] | None) -> None:
    if expected is None:
        with pytest.raises(PlaylistError):
            first_uri(text)
    else:
        assert first_uri(text) == expected


INITS = [
    ('#EXTM3U\n#EXT-X-MAP:URI="init.mp4",BYTERANGE="720@0"\n#EXTINF:2,\ns0.m4s\n', "init.mp4", "an fMP4 playlist names its init segment"),
    (MEDIA, None, "an MPEG-TS playlist has none"),
    ('#EXTM3U\n#EXTINF:2,\ns0.ts\n#EXT-X-MAP:URI="late.mp4"\n#EXTINF:2,\ns1.m4s\n', None, "a map after the first segment does not apply to it"),
]


@pytest.mark.parametrize(("text", "expected"), [i[:2] for i in INITS], ids=[i[2] for i in INITS])
def test_init_uri(text: str, expected: str | None) -> None:
    assert init_uri(text) == expected


def test_an_fmp4_stream_costs_the_playlist_the_init_segment_and_the_first_chunk(origin: str) -> None:
    Origin.requested.clear()
    with httpx.Client() as client:
        ms, url = measure_ttff(client, f"{origin}/cmaf/index.m3u8")
    assert url.endswith("/cmaf/chunk1.m4s") and ms > 0
    assert Origin.requested == ["/cmaf/index.m3u8", "/cmaf/init.mp4", "/cmaf/chunk1.m4s"]


def run_probe(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "streamslo.cli", "probe", "--interval", "0.1", "--timeout", "5", *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)


def wait_for(base: str, name: str, expected: float, labels: dict[str, str], timeout_s: float = 10.0) -> str:
    """Poll /metrics until series ``name{labels}`` reaches ``expected``; return the exposition."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = httpx.get(f"{base}/metrics", timeout=5).text
        value = sample(text, name, **labels)
        if (value is not None and value >= expected) or time.monotonic() > deadline:
            assert value == expected, f"{name}{labels} = {value}, want {expected}"
            return text
        time.sleep(0.25)


@pytest.mark.slow
def test_probe_reports_time_to_first_segment_and_echo_rtt_as_probe_samples(origin: str, tmp_path: Path) -> None:
    region, rounds = "sa-east-1", 3
    with embedded_server("streamslo run", tmp_path / "run.log") as base:
        result = run_probe("--target", f"{origin}/live/master.m3u8", "--echo", f"{origin}/echo",
                           "--region", region, "--collector", base, "--count", str(rounds))
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.count("report=202") == rounds

        probe = {"region": region, "kind": c.KIND_PROBE}
        text = wait_for(base, c.METRIC_LATENCY_COUNT, rounds, {"sli": c.SLI_TTFF, **probe})
        assert sample(text, c.METRIC_LATENCY_COUNT, sli=c.SLI_INTERACTION, **probe) == rounds
        assert sample(text, c.METRIC_ATTEMPTS, **probe) == rounds
        # every round waits for the origin's delayed segment: even the median is above the delay
        median = sample(text, c.METRIC_LATENCY_QUANTILE, sli=c.SLI_TTFF, quantile="0.5", window="1m", **probe)
        assert median is not None and median >= SEGMENT_DELAY_S * 0.99
        # probes never show up as real users
        assert sample(text, c.METRIC_LATENCY_COUNT, sli=c.SLI_TTFF, region=region, kind=c.KIND_RUM) in (None, 0.0)

        # an origin that answers 404 is a failed start: a fatal error, not a latency sample
        result = run_probe("--target", f"{origin}/live/missing.m3u8", "--region", region, "--collector", base, "--count", "1")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "PROBE_HTTP_404" in result.stdout
        wait_for(base, c.METRIC_ERRORS, 1, probe)


def test_probe_exits_nonzero_when_the_collector_refuses_its_reports(origin: str) -> None:
    # nothing listens on port 9 of 127.0.0.1: every report fails
    result = run_probe("--target", f"{origin}/live/master.m3u8", "--region", "eu-west-1",
                       "--collector", "http://127.0.0.1:9", "--count", "1")
    assert result.returncode == 1
    assert "report=0" in result.stdout
