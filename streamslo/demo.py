"""Synthetic player traffic for ``streamslo run --demo``, with an incident switch.

Simulated viewers in every region of the spec start playback (``first_frame``,
lognormal time to first frame), interact (``interaction``, lognormal round
trips), watch about ten seconds (a ``playing`` heartbeat, now and then a
``stall`` before it), report how far behind the live edge they are
(``live_latency``), and now and then fail to start (fatal ``error``), leave
before the first frame (``exit_before_start``), are refused for business
reasons (a geo-block: ``error`` of class ``business``) or hit a recovered
``warning``. Each viewer session sends one v1 beacon, POSTed through the
collector's own HTTP handler (in process, no sockets), so demo events take
exactly the path real beacons take. With a spec that declares a dimension,
each beacon carries one of its values (and now and then an unknown one).

Healthy traffic sits below every objective of the default spec: latencies
(p90 <= 150 ms, p95 <= 200 ms, p99 <= 300 ms), 0.2 % failed starts, 0.6 %
exits before start (<= 2 %), about 0.1 % of the time rebuffering (<= 0.5 %,
with room for a quiet minute's noise) and a live-edge p95 near 4 s (<= 5 s).
An *incident* in a region multiplies
its latencies about ninefold, raises failed starts to 5 %, exits to 8 %,
rebuffering to about 4 % and the live latency to about 9 s: every latency
event is then bad against the p95 and p99 thresholds (burn rate 20x and
100x), the error ratio burns at 5x and rebuffering at about 8x, so the
operational triggers and the burn-rate tiers develop as they would in a real
outage. Business refusals stay at 0.3 % either way: they never burn budget.

Example::

    demo = DemoTraffic(spec.regions, send=post_beacon, beacons_per_s=8, dimension=spec.dimension)
    demo.set_incident("eu-west-1", True)
    task = asyncio.create_task(demo.run())
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from slo import conventions as c
from slo.model import Dimension

SDK = "streamslo-demo/0.1.0"


@dataclass(frozen=True)
class Profile:
    """Latency/error/QoE model of one region: lognormal medians (ms) and sigmas, ratios."""

    ttff_median_ms: float = 60.0
    ttff_sigma: float = 0.33
    rtt_median_ms: float = 50.0
    rtt_sigma: float = 0.38
    fatal_ratio: float = 0.002
    exit_ratio: float = 0.006  # play attempts left before the first frame
    stall_ratio: float = 0.02  # sessions with a stall in their ~10 s of playback
    stall_median_ms: float = 400.0
    live_median_ms: float = 2500.0  # p95 about 4.1 s with sigma 0.3
    live_sigma: float = 0.3


HEALTHY = Profile()
# Medians far above the 300 ms p99 threshold: essentially every event is bad;
# a stall in 40 % of sessions, ~1 s each, is ~4 % of the time watched.
INCIDENT = Profile(ttff_median_ms=550.0, ttff_sigma=0.25, rtt_median_ms=500.0, rtt_sigma=0.25, fatal_ratio=0.05,
                   exit_ratio=0.08, stall_ratio=0.4, stall_median_ms=1000.0, live_median_ms=9000.0)
# Geo-blocks and the like: the same in both, and never an SLO error.
BUSINESS_RATIO = 0.003
WARNING_RATIO = 0.01
PLAYED_MS = (8000.0, 12000.0)  # played per session before its beacon, uniform
UNKNOWN_DIMENSION_RATIO = 0.05  # beacons whose dimension value is not in the allow-list


class DemoTraffic:
    """Generates beacons for ``regions`` at about ``beacons_per_s`` per region.

    ``send`` receives a JSON-ready beacon dict and returns the HTTP status.
    """

    def __init__(
        self,
        regions: Iterable[str],
        send: Callable[[dict[str, Any]], Awaitable[int]],
        *,
        beacons_per_s: float = 8.0,
        interactions_per_beacon: float = 2.0,
        tick_s: float = 0.25,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        dimension: Dimension | None = None,
    ) -> None:
        self.regions = tuple(regions)
        self.dimension = dimension
        self.send = send
        self.beacons_per_s = beacons_per_s
        self.interactions_per_beacon = interactions_per_beacon
        self.tick_s = tick_s
        self.clock = clock
        self.incidents: set[str] = set()
        self.sent = 0
        self.refused = 0
        self._rng = np.random.default_rng(seed)
        # Regions differ a little, as real ones do, so the page is not uniform.
        self._skew = {r: 1.0 + 0.04 * i for i, r in enumerate(self.regions)}

    def set_incident(self, region: str, on: bool) -> None:
        """Switch the incident in ``region`` on or off; unknown regions raise ``KeyError``."""
        if region not in self.regions:
            raise KeyError(region)
        if on:
            self.incidents.add(region)
        else:
            self.incidents.discard(region)

    def beacon(self, region: str, now: float) -> dict[str, Any]:
        """One viewer session's beacon: a playback start (or not), interactions, playback, live latency."""
        rng = self._rng
        p = INCIDENT if region in self.incidents else HEALTHY
        skew = 1.0 if region in self.incidents else self._skew[region]
        events: list[dict[str, Any]] = []
        # Every event happens before the beacon is sent (ts <= sent_at), as on a real
        # player: the interactions come 0.2 s after the start, so the start is at
        # least that long ago. (A start up to 1 s ago put interactions up to 0.2 s
        # after sent_at, in the future, and the status page showed negative freshness.)
        start = now - float(rng.uniform(0.2, 1.2))
        outcome = rng.random()
        if outcome < BUSINESS_RATIO:
            events.append({"type": c.EVENT_ERROR, "ts": start, "code": "GEO_BLOCKED", "class": c.ERROR_CLASS_BUSINESS})
        elif outcome < BUSINESS_RATIO + p.fatal_ratio:
            events.append({"type": c.EVENT_ERROR, "ts": start, "code": "MEDIA_ERR_NETWORK", "fatal": True})
        elif outcome < BUSINESS_RATIO + p.fatal_ratio + p.exit_ratio:
            waited = float(rng.lognormal(np.log(p.ttff_median_ms * 4), 0.5))
            events.append({"type": c.EVENT_EXIT_BEFORE_START, "ts": start, "value_ms": round(waited, 3)})
        else:
            ttff = float(rng.lognormal(np.log(p.ttff_median_ms * skew), p.ttff_sigma))
            events.append({"type": c.EVENT_FIRST_FRAME, "ts": start, "value_ms": round(ttff, 3)})
            for rtt in rng.lognormal(np.log(p.rtt_median_ms * skew), p.rtt_sigma, rng.poisson(self.interactions_per_beacon)):
                events.append({"type": c.EVENT_INTERACTION, "ts": start + 0.2, "value_ms": round(float(rtt), 3), "name": "poll_vote"})
            events.extend(self._playback(p, start + 0.2))
        beacon: dict[str, Any] = {
            "v": 1,
            "session_id": uuid.uuid4().hex,
            "seq": 1,
            "sent_at": now,
            "region": region,
            "sdk": SDK,
            "kind": c.KIND_RUM,
            "events": events,
        }
        if self.dimension is not None:
            unknown = rng.random() < UNKNOWN_DIMENSION_RATIO
            value = "unlisted" if unknown else str(rng.choice(self.dimension.values))
            beacon["dimensions"] = {self.dimension.name: value}
        return beacon

    def _playback(self, p: Profile, ts: float) -> list[dict[str, Any]]:
        """A started session's playback at ``ts``: maybe a stall, then a heartbeat and the live latency."""
        rng = self._rng
        events: list[dict[str, Any]] = []
        if rng.random() < WARNING_RATIO:
            events.append({"type": c.EVENT_ERROR, "ts": ts, "code": "MEDIA_ERR_DECODE", "class": c.ERROR_CLASS_WARNING})
        if rng.random() < p.stall_ratio:
            stall = float(rng.lognormal(np.log(p.stall_median_ms), 0.4))
            events.append({"type": c.EVENT_STALL, "ts": ts, "value_ms": round(stall, 3)})
        played = float(rng.uniform(*PLAYED_MS))
        events.append({"type": c.EVENT_PLAYING, "ts": ts, "value_ms": round(played, 3)})
        live = float(rng.lognormal(np.log(p.live_median_ms), p.live_sigma))
        events.append({"type": c.EVENT_LIVE_LATENCY, "ts": ts, "value_ms": round(live, 3)})
        return events

    async def tick(self) -> None:
        """Send one tick's worth of beacons for every region."""
        now = self.clock()
        for region in self.regions:
            for _ in range(int(self._rng.poisson(self.beacons_per_s * self.tick_s))):
                status = await self.send(self.beacon(region, now))
                self.sent += 1
                self.refused += not (200 <= status < 300)

    async def run(self) -> None:
        """Send traffic until cancelled."""
        while True:
            started = time.monotonic()
            await self.tick()
            await asyncio.sleep(max(0.0, self.tick_s - (time.monotonic() - started)))
