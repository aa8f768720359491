"""Traffic scenarios for ``streamslo simulate``: the YAML format and the built-in ones.

A scenario is a baseline of healthy traffic per region plus *effects*: time
spans where one region (or ``"*"``, all) gets more traffic, slower first
frames and interactions, or a higher fatal-error ratio. An effect is a
labelled incident unless it says ``incident: false`` (a launch's extra
traffic is not an incident; the slowness it causes is). Times are durations
(``30m``) or a percentage of the scenario's length (``40%``), so a built-in
scenario keeps its shape at any ``--hours``::

    name: my-scenario
    hours: 2                      # default length (--hours overrides)
    regions: [us-east-1, eu-west-1]
    attempts_per_s: 20            # play attempts per second per region
    interactions_per_attempt: 1.0
    ttff: {median_ms: 90, sigma: 0.3}          # log-normal first-frame latency
    interaction: {median_ms: 60, sigma: 0.35}  # log-normal interaction RTT
    error_ratio: 0.001            # fatal errors per play attempt
    diurnal: 0.0                  # amplitude of a 24 h sine on traffic
    events_per_beacon: 8
    delivery_s: 0.2               # a beacon arrives this long after its last event...
    delivery_jitter_s: 0.3        # ...plus an exponential delay of this mean (at most 5 s)
    effects:
      - {name: outage, region: eu-west-1, start: 40%, end: 40% + 30m, error_ratio: 1.0}
      - {name: slow, region: us-east-1, start: 10m, end: 40m, latency_factor: 2.5, ramp: 10m}
      - {name: launch, region: "*", start: 20m, end: 50m, traffic_factor: 4, ramp: 2m, incident: false}
      - {name: flap, region: eu-west-1, start: 30m, end: 32m, latency_factor: 2, repeat: {every: 5m, count: 6}}

A factor ramps linearly from 1 to its value over ``ramp`` after ``start``,
holds until ``end``, then is gone. ``repeat`` copies the effect ``count``
times, ``every`` apart (flapping), each copy its own incident.

Example::

    scenario = load_scenario("launch-spike", hours=2)
    scenario.effects[1].name        # 'overload'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from slo.durations import parse_duration

__all__ = ["BUILTIN", "Effect", "Latency", "Scenario", "load_scenario", "parse_scenario"]


@dataclass(frozen=True)
class Latency:
    """A log-normal latency: ``median_ms`` and the sigma of its logarithm."""

    median_ms: float
    sigma: float


@dataclass(frozen=True)
class Effect:
    """One span of changed traffic in one region (``"*"``: every region); times in seconds."""

    name: str
    region: str
    start_s: float
    end_s: float
    ramp_s: float = 0.0
    traffic_factor: float = 1.0
    latency_factor: float = 1.0
    error_ratio: float | None = None
    incident: bool = True


@dataclass(frozen=True)
class Scenario:
    """Everything ``simulate`` needs to draw the traffic; see the module docstring."""

    name: str
    hours: float
    regions: tuple[str, ...] = ("us-east-1", "eu-west-1")
    attempts_per_s: float = 20.0
    interactions_per_attempt: float = 1.0
    ttff: Latency = Latency(90.0, 0.3)
    interaction: Latency = Latency(60.0, 0.35)
    error_ratio: float = 0.001
    diurnal: float = 0.0
    events_per_beacon: int = 8
    delivery_s: float = 0.2
    delivery_jitter_s: float = 0.3
    effects: tuple[Effect, ...] = field(default_factory=tuple)

    @property
    def duration_s(self) -> float:
        return self.hours * 3600.0


# The built-in scenarios, in the file format. Healthy ttff: p95 = 90 ms x e^(1.645 x 0.3)
# = 147 ms, p99 = 181 ms; a latency factor above 1.36 puts p95 over 200 ms, 1.66 p99 over 300.
BUILTIN: dict[str, dict[str, Any]] = {
    "diurnal": {"hours": 24, "diurnal": 0.6},
    "launch-spike": {
        "hours": 2,
        "effects": [
            # Five times the traffic everywhere, a little slower (p95 184 ms): busy, not an incident.
            {"name": "launch", "region": "*", "start": "40%", "end": "70%", "traffic_factor": 5,
             "latency_factor": 1.25, "ramp": "2m", "incident": False},
            # eu-west-1's edge runs short a few minutes in (p95 276 ms, p99 339 ms): the incident.
            {"name": "overload", "region": "eu-west-1", "start": "40% + 3m", "end": "70%",
             "latency_factor": 1.5, "ramp": "2m"},
        ],
    },
    "regional-regression": {
        "hours": 2,
        "effects": [{"name": "regression", "region": "eu-west-1", "start": "30%", "end": "80%",
                     "latency_factor": 2.2, "ramp": "20%"}],
    },
    "regional-outage": {
        "hours": 2,
        "effects": [{"name": "outage", "region": "eu-west-1", "start": "40%", "end": "40% + 30m",
                     "error_ratio": 1.0}],
    },
    "flapping": {
        "hours": 2,
        "effects": [{"name": "flap", "region": "eu-west-1", "start": "20%", "end": "20% + 2m",
                     "latency_factor": 2.0, "repeat": {"every": "6m", "count": 8}}],
    },
}

_TIME = re.compile(r"^\s*(?:(?P<pct>[0-9.]+)%)?\s*(?:(?P<sign>[+-])?\s*(?P<dur>(?:[0-9.]+[a-z]+)+))?\s*$")


def _time(value: Any, length_s: float, where: str) -> float:
    """``"30m"``, ``"2h30m"``, ``"40%"``, ``"40% + 3m"`` or a number of seconds."""
    if isinstance(value, int | float):
        return float(value)
    m = _TIME.match(str(value))
    if not m or not (m["pct"] or m["dur"]):
        raise ValueError(f"{where}: {value!r} is not a duration or a percentage")
    seconds = float(m["pct"]) / 100.0 * length_s if m["pct"] else 0.0
    if m["dur"]:
        seconds += (-1 if m["sign"] == "-" else 1) * parse_duration(m["dur"])
    return seconds


def _latency(doc: Any, default: Latency, where: str) -> Latency:
    if doc is None:
        return default
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: expected {{median_ms, sigma}}")
    return Latency(float(doc.get("median_ms", default.median_ms)), float(doc.get("sigma", default.sigma)))


_EFFECT_KEYS = {"name", "region", "start", "end", "ramp", "traffic_factor", "latency_factor",
                "error_ratio", "incident", "repeat"}


def _effects(doc: dict[str, Any], length_s: float, where: str) -> list[Effect]:
    unknown = set(doc) - _EFFECT_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
    start = _time(doc.get("start", 0), length_s, f"{where}.start")
    end = _time(doc.get("end", length_s), length_s, f"{where}.end")
    if end <= start:
        raise ValueError(f"{where}: end must be after start")
    err = doc.get("error_ratio")
    base = Effect(
        name=str(doc.get("name", where)), region=str(doc.get("region", "*")), start_s=start, end_s=end,
        ramp_s=_time(doc.get("ramp", 0), length_s, f"{where}.ramp"),
        traffic_factor=float(doc.get("traffic_factor", 1.0)),
        latency_factor=float(doc.get("latency_factor", 1.0)),
        error_ratio=None if err is None else float(err), incident=bool(doc.get("incident", True)),
    )
    repeat = doc.get("repeat")
    if not repeat:
        return [base]
    every = _time(repeat.get("every"), length_s, f"{where}.repeat.every")
    count = int(repeat.get("count", 1))
    return [replace(base, name=f"{base.name}-{i + 1}", start_s=start + i * every, end_s=end + i * every)
            for i in range(count)]


_KEYS = {"name", "hours", "regions", "attempts_per_s", "interactions_per_attempt", "ttff", "interaction",
         "error_ratio", "diurnal", "events_per_beacon", "delivery_s", "delivery_jitter_s", "effects"}


def parse_scenario(doc: dict[str, Any], name: str, hours: float | None = None,
                   regions: tuple[str, ...] | None = None) -> Scenario:
    """A :class:`Scenario` from its YAML document; errors name the field."""
    if not isinstance(doc, dict):
        raise ValueError(f"scenario {name}: expected a mapping")
    unknown = set(doc) - _KEYS
    if unknown:
        raise ValueError(f"scenario {name}: unknown field(s) {sorted(unknown)}")
    d = Scenario(name=name, hours=1.0)
    length_h = float(hours if hours is not None else doc.get("hours", d.hours))
    if length_h <= 0:
        raise ValueError(f"scenario {name}: hours must be > 0")
    effects: list[Effect] = []
    for i, e in enumerate(doc.get("effects") or []):
        effects.extend(_effects(e, length_h * 3600.0, f"effects[{i}]"))
    scenario = Scenario(
        name=str(doc.get("name", name)), hours=length_h,
        regions=tuple(regions or doc.get("regions") or d.regions),
        attempts_per_s=float(doc.get("attempts_per_s", d.attempts_per_s)),
        interactions_per_attempt=float(doc.get("interactions_per_attempt", d.interactions_per_attempt)),
        ttff=_latency(doc.get("ttff"), d.ttff, "ttff"),
        interaction=_latency(doc.get("interaction"), d.interaction, "interaction"),
        error_ratio=float(doc.get("error_ratio", d.error_ratio)),
        diurnal=float(doc.get("diurnal", d.diurnal)),
        events_per_beacon=int(doc.get("events_per_beacon", d.events_per_beacon)),
        delivery_s=float(doc.get("delivery_s", d.delivery_s)),
        delivery_jitter_s=float(doc.get("delivery_jitter_s", d.delivery_jitter_s)),
        effects=tuple(effects),
    )
    if scenario.events_per_beacon < 1 or scenario.attempts_per_s <= 0:
        raise ValueError(f"scenario {name}: events_per_beacon and attempts_per_s must be > 0")
    return scenario


def load_scenario(name_or_file: str, hours: float | None = None,
                  regions: tuple[str, ...] | None = None) -> Scenario:
    """A built-in scenario by name, or a scenario YAML file."""
    if name_or_file in BUILTIN:
        return parse_scenario(BUILTIN[name_or_file], name_or_file, hours, regions)
    path = Path(name_or_file)
    if not path.exists():
        raise ValueError(f"unknown scenario {name_or_file!r}: not a file, nor one of {sorted(BUILTIN)}")
    return parse_scenario(yaml.safe_load(path.read_text()), path.stem, hours, regions)
