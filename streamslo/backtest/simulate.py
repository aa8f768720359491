"""Seeded synthetic traffic from a :class:`Scenario`, drawn with numpy one region at a time.

Use :func:`simulate` to get the beacons of a scenario (in arrival order) and
:func:`write` to save them as a replay file (``streamslo/backtest/data.py``)
with the scenario's incidents in the header. The same seed gives the same
file, byte for byte.

How the traffic is drawn, per region and per second of the scenario: play
attempts ~ Poisson(``attempts_per_s`` x diurnal x traffic factor), each a
first frame with a log-normal latency (median x latency factor) or, with the
second's error ratio, a fatal error; interactions likewise. Event times are
uniform within their second. The region's events, in time order, are cut
into beacons of ``events_per_beacon`` (one session each); a beacon arrives
``delivery_s`` plus an exponential delay (mean ``delivery_jitter_s``, at most
5 s in all) after its last event.

Example::

    beacons, incidents = simulate(load_scenario("regional-outage", hours=1), seed=7, start=1.764e9)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slo import conventions as c
from slo.beacon import Beacon, Event
from streamslo.backtest.data import Header, Incident, ReplayWriter
from streamslo.backtest.scenario import Effect, Scenario

__all__ = ["DEFAULT_START", "incidents", "region_arrays", "simulate", "write"]

DEFAULT_START = 1_764_000_000.0  # 2025-11-24T16:00:00Z, an arbitrary fixed origin
_FF, _INTER, _ERR = 0, 1, 2
_TYPES = (c.EVENT_FIRST_FRAME, c.EVENT_INTERACTION, c.EVENT_ERROR)


def _profile(effect: Effect, t: np.ndarray) -> np.ndarray:
    """0..1: how much of ``effect`` applies at each second (linear ramp, then full, then gone)."""
    inside = (t >= effect.start_s) & (t < effect.end_s)
    if effect.ramp_s > 0:
        level = np.clip((t - effect.start_s) / effect.ramp_s, 0.0, 1.0)
    else:
        level = np.ones_like(t)
    return np.where(inside, level, 0.0)


def _shape(scenario: Scenario, region: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per second: traffic multiplier, latency multiplier, fatal-error ratio."""
    traffic = 1.0 + scenario.diurnal * np.sin(2 * np.pi * t / 86_400.0)
    latency = np.ones_like(t)
    errors = np.full_like(t, scenario.error_ratio)
    for e in scenario.effects:
        if e.region not in ("*", region):
            continue
        level = _profile(e, t)
        traffic = traffic * (1.0 + (e.traffic_factor - 1.0) * level)
        latency = latency * (1.0 + (e.latency_factor - 1.0) * level)
        if e.error_ratio is not None:
            errors = np.where(level > 0, errors + (e.error_ratio - errors) * level, errors)
    return traffic, latency, errors


def region_arrays(
    scenario: Scenario, region: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One region's events, sorted by time: (seconds from start, type code, value ms or NaN)."""
    t = np.arange(int(scenario.duration_s), dtype=np.float64)
    traffic, latency, errors = _shape(scenario, region, t)
    n_att = rng.poisson(scenario.attempts_per_s * traffic)
    n_int = rng.poisson(scenario.attempts_per_s * scenario.interactions_per_attempt * traffic)
    sec_att = np.repeat(np.arange(t.size), n_att)
    sec_int = np.repeat(np.arange(t.size), n_int)
    failed = rng.random(sec_att.size) < errors[sec_att]
    ttff = scenario.ttff.median_ms * latency[sec_att] * np.exp(scenario.ttff.sigma * rng.standard_normal(sec_att.size))
    inter = (scenario.interaction.median_ms * latency[sec_int]
             * np.exp(scenario.interaction.sigma * rng.standard_normal(sec_int.size)))
    times = np.concatenate([sec_att + rng.random(sec_att.size), sec_int + rng.random(sec_int.size)])
    types = np.concatenate([np.where(failed, _ERR, _FF), np.full(sec_int.size, _INTER)]).astype(np.int8)
    # The collector refuses values above 600 000 ms; a simulated tail never gets near it.
    values = np.concatenate([np.where(failed, np.nan, np.minimum(ttff, 600_000.0)), np.minimum(inter, 600_000.0)])
    order = np.argsort(times, kind="stable")
    return times[order], types[order], np.round(values[order], 3)


def _region_beacons(scenario: Scenario, region: str, start: float, rng: np.random.Generator) -> list[Beacon]:
    times, types, values = region_arrays(scenario, region, rng)
    k = scenario.events_per_beacon
    n_beacons = -(-times.size // k)
    jitter = rng.exponential(scenario.delivery_jitter_s, n_beacons) if scenario.delivery_jitter_s > 0 \
        else np.zeros(n_beacons)
    delays = np.minimum(scenario.delivery_s + jitter, 5.0)
    abs_t = (start + times).tolist()
    type_list = types.tolist()
    value_list = values.tolist()
    out = []
    for b in range(n_beacons):
        lo, hi = b * k, min((b + 1) * k, times.size)
        events = [
            Event(c.EVENT_ERROR, abs_t[i], None, True) if type_list[i] == _ERR
            else Event(_TYPES[type_list[i]], abs_t[i], value_list[i])
            for i in range(lo, hi)
        ]
        received = round(abs_t[hi - 1] + float(delays[b]), 3)
        out.append(Beacon(f"sim-{region}-{b}", 0, region, c.KIND_RUM, received, received - 0.05, events, "sim"))
    return out


def simulate(scenario: Scenario, *, seed: int, start: float = DEFAULT_START) -> tuple[list[Beacon], list[Incident]]:
    """All regions' beacons in arrival order (``received_at``) and the labelled incidents."""
    rng = np.random.default_rng(seed)
    beacons: list[Beacon] = []
    for region in scenario.regions:
        beacons.extend(_region_beacons(scenario, region, start, rng))
    beacons.sort(key=lambda b: b.received_at)
    return beacons, incidents(scenario)


def incidents(scenario: Scenario) -> list[Incident]:
    """The effects that are incidents, clipped to the scenario's length."""
    return [
        Incident(e.name, e.region, e.start_s, min(e.end_s, scenario.duration_s))
        for e in scenario.effects
        if e.incident and e.start_s < scenario.duration_s
    ]


def write(scenario: Scenario, path: str | Path, *, seed: int, start: float = DEFAULT_START) -> Header:
    """Simulate ``scenario`` into the replay file ``path``; return its header."""
    beacons, labelled = simulate(scenario, seed=seed, start=start)
    header = Header(start=start, end=start + scenario.duration_s, source=f"simulate:{scenario.name}",
                    seed=seed, incidents=labelled)
    with ReplayWriter(path, header) as out:
        for b in beacons:
            out.write(b)
    return header


def main(argv: list[str]) -> int:
    """``streamslo simulate --scenario NAME|FILE [--hours H] [--seed S] [--regions R,...] --out FILE``."""
    import argparse

    from streamslo.backtest.scenario import BUILTIN, load_scenario

    parser = argparse.ArgumentParser(prog="streamslo simulate", description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", required=True, help=f"one of {', '.join(BUILTIN)}, or a scenario YAML file")
    parser.add_argument("--hours", type=float, help="length (default: the scenario's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=float, default=DEFAULT_START, help="unix seconds of the first second")
    parser.add_argument("--regions", help="comma-separated regions (default: the scenario's)")
    parser.add_argument("--out", required=True, help="replay file to write (gzip JSON lines)")
    args = parser.parse_args(argv)
    regions = tuple(r for r in args.regions.split(",") if r) if args.regions else None
    try:
        scenario = load_scenario(args.scenario, args.hours, regions)
    except ValueError as exc:
        parser.error(str(exc))
    header = write(scenario, args.out, seed=args.seed, start=args.start)
    for inc in header.incidents:
        print(f"incident {inc.name}: {inc.region} from {inc.start_s:g}s to {inc.end_s:g}s")
    print(f"wrote {args.out}: {scenario.name}, {scenario.hours:g} h, seed {args.seed}")
    return 0
