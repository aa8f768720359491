"""``--sweep``: one replay, then a grid of thresholds and ``for:`` (or tier factors) re-decided offline.

Use :func:`sweep_trigger` / :func:`sweep_tier` on a finished
:class:`~streamslo.backtest.run.Outcome`. The replay already recorded what
each decision rests on, so no grid point replays the data again:

- a trigger: every clause's figure (value, events) and the region's last
  data instant at every tick; each grid point re-decides the clause with
  its limit (``slo.budget.condition_holds``'s rule; every clause in the
  first clause's unit takes the grid's threshold), applies stage 2's
  no-data rule and runs the one state machine (:func:`slo.health.observe`)
  with its ``for:``. At the spec's own limit and ``for:`` this reproduces
  the replay's trigger state exactly (``tests/test_backtest_sweep.py``);
  observations are at the evaluation ticks;
- a tier: the long and short burn rates and the low-traffic guard per tick;
  each factor re-decides ``both burns >= factor``, then the rule's ``for:``.

Each row: detected incidents, mean and max detection delay, false alarms
(firings that detect nothing), flaps (extra firings during an incident
already detected) and time firing.

Example::

    rows = sweep_trigger(outcome, "scale_out", thresholds=[0.18, 0.2], fors=[10.0, 20.0])
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from slo import conventions as c
from slo import health
from slo.durations import parse_duration
from slo.health import ConditionFigure
from slo.model import Spec, Trigger, sli_kind
from streamslo.backtest import data
from streamslo.backtest.evaluate import Interval, intervals, match, prometheus_alert
from streamslo.backtest.run import Outcome, backtest

__all__ = ["redecide", "run_sweep", "same_unit", "sweep_tier", "sweep_trigger"]


def _holds(f: ConditionFigure, limit: float, min_events: int) -> bool:
    # condition_holds: enough events, then the value strictly above the limit.
    if f.events <= 0 or f.events < min_events or f.value is None:
        return False
    return f.value > limit


def redecide(trigger: Trigger, t: Sequence[float], start: float, figures: Sequence[tuple[ConditionFigure, ...]],
             last_data_at: Sequence[float | None], clauses: set[int], limit: float) -> list[bool]:
    """The trigger's breach at every tick with the limit of the clauses ``clauses`` set to ``limit``."""
    memory = health.Memory()
    out = []
    for rel, figs, last in zip(t, figures, last_data_at, strict=True):
        now = start + rel
        limits = [limit if i in clauses else f.limit for i, f in enumerate(figs)]
        holds: bool | None = any(_holds(f, lim, trigger.min_events) for f, lim in zip(figs, limits, strict=True))
        if not holds and (not figs or all(f.events < max(1, trigger.min_events) for f in figs) or last is None
                          or now - last > trigger.stale_after_s):
            holds = None  # stage 2's no-data rule: on_no_data decides
        memory = health.observe(trigger, memory, holds, now)
        out.append(memory.breached)
    return out


def _score(spans: list[Interval], region: str, incidents: list[data.Incident], grace_s: float,
           end_s: float) -> dict[str, Any]:
    detected: dict[str, float] = {}
    false = flaps = 0
    for span in spans:
        inc = match(region, span, incidents, grace_s)
        if inc is None:
            false += 1
        elif inc.name in detected:
            flaps += 1
        else:
            detected[inc.name] = span[0] - inc.start_s
    delays = list(detected.values())
    return {"detected": len(detected), "mean_delay_s": sum(delays) / len(delays) if delays else None,
            "max_delay_s": max(delays) if delays else None, "false": false, "flaps": flaps,
            "firing_s": sum((b if b is not None else end_s) - a for a, b in spans)}


def _merge(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the per-region scores of one grid point."""
    delays = [r["mean_delay_s"] for r in rows if r["mean_delay_s"] is not None]
    return {"detected": sum(r["detected"] for r in rows),
            "mean_delay_s": sum(delays) / len(delays) if delays else None,
            "max_delay_s": max((r["max_delay_s"] for r in rows if r["max_delay_s"] is not None), default=None),
            "false": sum(r["false"] for r in rows), "flaps": sum(r["flaps"] for r in rows),
            "firing_s": sum(r["firing_s"] for r in rows)}


def _is_latency(sli: str) -> bool:
    return sli_kind(sli) == c.SLI_KIND_LATENCY


def same_unit(trigger: Trigger, clause: int = 0) -> set[int]:
    """The clauses whose limit is in the unit of clause ``clause``: every latency clause, or every ratio one."""
    latency = _is_latency(trigger.conditions[clause].sli)
    return {i for i, cond in enumerate(trigger.conditions) if _is_latency(cond.sli) == latency}


def sweep_trigger(outcome: Outcome, name: str, thresholds: Sequence[float], fors: Sequence[float],
                  clause: int = 0) -> list[dict[str, Any]]:
    """One row per (threshold, for:) of trigger ``name``.

    The threshold replaces the limit of clause ``clause`` and of every clause in
    its unit (all latency quantiles, in seconds, or the ratios: errors, exits, rebuffering).
    """
    spec, tl = outcome.timeline.spec, outcome.timeline
    trigger = next((t for t in spec.triggers if t.name == name), None)
    if trigger is None or not 0 <= clause < len(trigger.conditions):
        raise ValueError(f"no trigger {name!r} with a clause {clause}")
    clauses = same_unit(trigger, clause)
    end_s = tl.t[-1] if tl.t else 0.0
    rows = []
    for for_s in fors:
        variant = replace(trigger, for_s=for_s)
        for limit in thresholds:
            scores = []
            for region in tl.regions:
                ts = tl.triggers[(name, region)]
                active = redecide(variant, tl.t, tl.start, ts.figures, ts.last_data_at, clauses, limit)
                scores.append(_score(intervals(tl.t, active), region, outcome.header.incidents,
                                     trigger.window_s + for_s, end_s))
            rows.append({"threshold": limit, "for_s": for_s} | _merge(scores))
    return rows


def sweep_tier(outcome: Outcome, slo_name: str, tier: str, factors: Sequence[float]) -> list[dict[str, Any]]:
    """One row per factor of the tier ``tier`` of SLO ``slo_name``."""
    spec, tl = outcome.timeline.spec, outcome.timeline
    resolved = next((r for r in spec.resolved_tiers(spec.slo(slo_name)) if r.name == tier), None)
    if resolved is None:
        raise ValueError(f"SLO {slo_name!r} has no tier {tier!r}")
    end_s = tl.t[-1] if tl.t else 0.0
    rows = []
    for factor in factors:
        scores = []
        for region in tl.regions:
            s = tl.tiers[(slo_name, tier, region)]
            holds = [ok and lo is not None and sh is not None and lo >= factor and sh >= factor
                     for lo, sh, ok in zip(s.long, s.short, s.enough, strict=True)]
            spans = prometheus_alert(tl.t, holds, resolved.tier.for_s)
            scores.append(_score(spans, region, outcome.header.incidents, resolved.tier.long_s, end_s))
        rows.append({"factor": factor} | _merge(scores))
    return rows


def _floats(text: str | None, what: str) -> list[float]:
    if not text:
        raise ValueError(f"--sweep needs {what}")
    return [float(x) for x in text.split(",") if x]


def run_sweep(spec: Spec, args: argparse.Namespace, incidents: list[data.Incident] | None,
              eval_s: float, flush_s: float) -> int:
    """The CLI's ``--sweep``: check the grid, replay once, print the grid (and ``--json`` it)."""
    try:
        if ":" in args.sweep:
            slo_name, tier = args.sweep.split(":", 1)
            factors = _floats(args.factor, "--factor A,B,...")
            if not any(r.name == tier for r in spec.resolved_tiers(spec.slo(slo_name))):
                raise ValueError(f"SLO {slo_name!r} has no tier {tier!r}")
        else:
            trigger = next((t for t in spec.triggers if t.name == args.sweep), None)
            if trigger is None:
                raise ValueError(f"no trigger {args.sweep!r} in the spec")
            latency = _is_latency(trigger.conditions[0].sli)
            limits = _floats(args.threshold, "--threshold A,B,...")
            fors = [parse_duration(x) for x in (args.for_ or "").split(",") if x] or [trigger.for_s]
    except (ValueError, KeyError) as exc:
        print(f"streamslo backtest: {exc}", file=sys.stderr)
        return 2
    outcome = backtest(spec, args.data, incidents=incidents, eval_interval_s=eval_s, flush_interval_s=flush_s)
    if ":" in args.sweep:
        rows = sweep_tier(outcome, slo_name, tier, factors)
    else:
        rows = sweep_trigger(outcome, args.sweep, [v / 1000 if latency else v for v in limits], fors)
        if latency:
            rows = [r | {"threshold": r["threshold"] * 1000} for r in rows]
    _print(rows, args.sweep, outcome)
    if args.json:
        Path(args.json).write_text(json.dumps({"sweep": args.sweep, "rows": rows}, indent=1) + "\n")
    return 0


def _print(rows: list[dict[str, Any]], what: str, outcome: Outcome) -> None:
    console = Console() if Console().is_terminal else Console(width=160)
    table = Table(title=f"sweep {what}: {len(outcome.header.incidents)} labelled incidents")
    keys = list(rows[0]) if rows else []
    for k in keys:
        table.add_column(k)
    for r in rows:
        table.add_row(*("-" if r[k] is None else f"{r[k]:g}" for k in keys))
    console.print(table)
