"""Region health: the per-trigger state machine behind ``/v1/regions/{region}/health``.

Pure (no framework imports). One :class:`Memory` per (region, trigger) moves
through three states::

    ok ──condition held `for`──► breach ──condition clear `recover_for`──► ok
      ▲                                                                    │
      └─────── a condition that comes back during recover_for restarts ────┘

*No data* (the condition could not be evaluated: fewer than ``min_events``
events in the window, or no partial for ``stale_after``) sets the verdict by
the trigger's ``on_no_data``: ``healthy`` (ok), ``unhealthy`` (breach) or
``last_known`` (unchanged); the ``for`` / ``recover_for`` counts restart when
data comes back, because "held for 2 minutes" needs 2 minutes of evidence.

Stage 2 calls :func:`observe` on every ``advance``; readers call
:func:`at` to see a memory at a later instant (a worker that does not own the
region reads the owner's last published memory and gets the same answer).
:func:`region_health` folds the triggers of one region into the endpoint's
verdict and :func:`render` writes the response body.

Example::

    m = observe(trigger, Memory(), True, now=0.0)      # pending
    at(trigger, m, now=120.0, last_data_at=119.0).breached   # True after for: 2m
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from slo import conventions as c
from slo.model import NO_DATA_HEALTHY, NO_DATA_UNHEALTHY, TARGET_ROUTE53, Spec, Trigger

__all__ = [
    "BODY_BREACH",
    "BODY_OK",
    "MAX_BODY_BYTES",
    "ConditionFigure",
    "HealthReport",
    "Memory",
    "RegionHealth",
    "TriggerHealth",
    "answer",
    "at",
    "health_triggers",
    "observe",
    "region_health",
    "render",
]

BODY_OK = "SLO_OK"
BODY_BREACH = "SLO_BREACH"
# Route 53 string matching reads only the first 5,120 bytes of the body.
MAX_BODY_BYTES = 5120


@dataclass(frozen=True)
class Memory:
    """What one trigger remembers in one region; times are Unix seconds.

    ``held_since``: the condition has held without a break since then;
    ``clear_since``: while breached, clear without a break since then;
    ``no_data_since``: no usable data since then (None while there is data).
    """

    breached: bool = False
    breach_since: float | None = None
    held_since: float | None = None
    clear_since: float | None = None
    no_data_since: float | None = None
    observed_at: float | None = None

    @property
    def condition(self) -> bool:
        """Whether the last observation saw the condition hold."""
        return self.held_since is not None


@dataclass(frozen=True)
class ConditionFigure:
    """One clause of a trigger as last evaluated: the figure behind the verdict."""

    sli: str
    quantile: float | None
    value: float | None
    limit: float
    events: int
    holds: bool


def observe(trigger: Trigger, memory: Memory, holds: bool | None, now: float) -> Memory:
    """The memory after observing the condition at ``now`` (None = no usable data)."""
    if holds is None:
        return _no_data(trigger, memory, now)
    if holds:
        held = memory.held_since if memory.held_since is not None else now
        m = replace(memory, held_since=held, clear_since=None, no_data_since=None, observed_at=now)
    else:
        clear = (memory.clear_since if memory.clear_since is not None else now) if memory.breached else None
        m = replace(memory, held_since=None, clear_since=clear, no_data_since=None, observed_at=now)
    return _elapse(trigger, m, now)


def at(trigger: Trigger, memory: Memory, now: float, last_data_at: float | None) -> Memory:
    """``memory`` seen at ``now``, assuming the last observation still stands.

    Applies the transitions that only need time (``for`` / ``recover_for``
    elapsing) and staleness: no data since ``last_data_at`` for longer than
    ``stale_after`` is no data.
    """
    if last_data_at is None or now - last_data_at > trigger.stale_after_s:
        return _no_data(trigger, memory, now)
    return _elapse(trigger, memory, now)


def _elapse(trigger: Trigger, m: Memory, now: float) -> Memory:
    if not m.breached and m.held_since is not None and now - m.held_since >= trigger.for_s:
        # Breached exactly `for` after the condition started holding.
        return replace(m, breached=True, breach_since=m.held_since + trigger.for_s)
    if m.breached and m.clear_since is not None and now - m.clear_since >= trigger.recover_for_s:
        return replace(m, breached=False, breach_since=None, clear_since=None)
    return m


def _no_data(trigger: Trigger, m: Memory, now: float) -> Memory:
    since = m.no_data_since if m.no_data_since is not None else now
    breached, breach_since = m.breached, m.breach_since
    if trigger.on_no_data == NO_DATA_HEALTHY:
        breached, breach_since = False, None
    elif trigger.on_no_data == NO_DATA_UNHEALTHY and not breached:
        breached, breach_since = True, since
    return Memory(breached=breached, breach_since=breach_since, no_data_since=since, observed_at=m.observed_at)


@dataclass(frozen=True)
class TriggerHealth:
    """One trigger's part of a region's health answer."""

    trigger: str
    drives_health: bool
    breached: bool
    condition: bool
    no_data: bool
    on_no_data: str
    for_s: float
    recover_for_s: float
    held_since: float | None
    breach_since: float | None
    clear_since: float | None
    figures: tuple[ConditionFigure, ...]


@dataclass(frozen=True)
class RegionHealth:
    """The endpoint's answer for one region: healthy unless a health trigger is breached."""

    region: str
    healthy: bool
    now: float
    last_data_at: float | None
    triggers: tuple[TriggerHealth, ...]


def health_triggers(spec: Spec) -> tuple[str, ...]:
    """Names of the triggers that decide the health answer.

    The triggers with a ``route53`` target (a DNS health check acts on them);
    all triggers when none has one.
    """
    chosen = tuple(t.name for t in spec.triggers if t.targets_of(TARGET_ROUTE53))
    return chosen or tuple(t.name for t in spec.triggers)


@dataclass(frozen=True)
class HealthReport:
    """What the owner of a region knows about its health: enough for anyone to answer.

    Stage 2 builds it (``Stage2.health_report``); the stream worker publishes
    it so that every worker answers alike (``slo/stream/health.py``).
    """

    region: str
    memories: dict[str, Memory]
    figures: dict[str, tuple[ConditionFigure, ...]]
    last_data_at: float | None

    def to_json(self) -> bytes:
        """A compact JSON encoding (the shared health topic's record value)."""
        doc = {
            "region": self.region,
            "memories": {k: asdict(v) for k, v in sorted(self.memories.items())},
            "figures": {k: [asdict(f) for f in v] for k, v in sorted(self.figures.items())},
            "last_data_at": self.last_data_at,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> HealthReport:
        """Inverse of :meth:`to_json`; ValueError (or KeyError/TypeError) on a malformed record."""
        doc = json.loads(data)
        return cls(
            region=str(doc["region"]),
            memories={k: Memory(**v) for k, v in doc["memories"].items()},
            figures={k: tuple(ConditionFigure(**f) for f in v) for k, v in doc["figures"].items()},
            last_data_at=doc["last_data_at"],
        )


def region_health(spec: Spec, region: str, report: HealthReport | None, now: float) -> RegionHealth | None:
    """Fold one region's report into its health at ``now``; None for a region not in the spec.

    A region of the spec that never reported has no report: every trigger is
    in no data and answers its ``on_no_data``.
    """
    if region not in spec.regions:
        return None
    memories = report.memories if report else {}
    figures = report.figures if report else {}
    last_data_at = report.last_data_at if report else None
    deciding = health_triggers(spec)
    parts = []
    for trigger in spec.triggers:
        m = at(trigger, memories.get(trigger.name, Memory()), now, last_data_at)
        parts.append(
            TriggerHealth(
                trigger=trigger.name,
                drives_health=trigger.name in deciding,
                breached=m.breached,
                condition=m.condition,
                no_data=m.no_data_since is not None,
                on_no_data=trigger.on_no_data,
                for_s=trigger.for_s,
                recover_for_s=trigger.recover_for_s,
                held_since=m.held_since,
                breach_since=m.breach_since,
                clear_since=m.clear_since,
                figures=figures.get(trigger.name, ()),
            )
        )
    healthy = not any(p.breached for p in parts if p.drives_health)
    return RegionHealth(region=region, healthy=healthy, now=now, last_data_at=last_data_at, triggers=tuple(parts))


def render(health: RegionHealth) -> tuple[int, str]:
    """``(status, body)`` for the endpoint: 200 ``SLO_OK`` or 503 ``SLO_BREACH``, then JSON.

    The marker is the first line, so it always sits in the first 5,120 bytes.
    """
    doc: dict[str, Any] = {
        "region": health.region,
        "status": "ok" if health.healthy else "breach",
        "now": round(health.now, 3),
        "last_data_at": health.last_data_at,
        "triggers": [asdict(t) for t in health.triggers],
    }
    marker = BODY_OK if health.healthy else BODY_BREACH
    return (200 if health.healthy else 503), f"{marker}\n{json.dumps(doc, sort_keys=True)}\n"


def answer(spec: Spec, region: str, report: HealthReport | None, now: float) -> tuple[int, str, str]:
    """``(status, body, outcome)`` of ``GET /v1/regions/{region}/health``, for any transport.

    404 names the unknown region and lists the spec's regions. ``outcome``
    labels ``streamslo_health_requests_total``.
    """
    health = region_health(spec, region, report, now)
    if health is None:
        detail = {"detail": f"region: unknown region {region!r}; regions: {', '.join(spec.regions)}"}
        return 404, f"UNKNOWN_REGION\n{json.dumps(detail)}\n", c.HEALTH_UNKNOWN_REGION
    status, body = render(health)
    return status, body, c.HEALTH_OK if health.healthy else c.HEALTH_BREACH
