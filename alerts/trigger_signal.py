"""Recording rules turning a trigger into the one series an autoscaler reads.

Use :func:`autoscaling_group` for the ``streamslo-autoscaling-recordings``
group of ``rules.yml``. Per trigger with an ``hpa`` target, two records per
region:

- ``streamslo:trigger_ratio:max{trigger}``: the trigger's worst clause as a ratio to
  its limit over the trigger's window (p95 of 1m / 200 ms; error ratio / 1 %,
  or any ratio SLI's ratio / its ``above_ratio``);
  1.0 is the limit. A clause without ``min_events`` events is left out, so a
  region without enough data has no series at all (the HPA then holds);
- ``streamslo:trigger_ratio:held<for>{trigger}``: ``min_over_time`` of the above over
  the trigger's ``for:``: above 1 only once *every* evaluation of the last
  ``for:`` was above the limit. This is where ``for:`` lives, so the HPA's
  scale-up stabilization window is 0 (no double counting).

>>> from slo.spec import load_spec
>>> spec, _ = load_spec()
>>> held_record(spec.triggers[0])
'streamslo:trigger_ratio:held2m'
"""

from __future__ import annotations

from alerts.recording import Group, Rule
from slo import conventions as c
from slo import promql
from slo.durations import format_duration
from slo.model import TARGET_HPA, Condition, Spec, Trigger

__all__ = ["autoscaling_group", "clause_expr", "clause_ratio", "held_record", "held_selector", "scaled_triggers"]


def scaled_triggers(spec: Spec) -> tuple[Trigger, ...]:
    """The triggers that drive an autoscaler (an ``hpa`` target), in spec order."""
    return tuple(t for t in spec.triggers if t.targets_of(TARGET_HPA))


def held_record(trigger: Trigger) -> str:
    """The record an autoscaler reads for ``trigger`` (the plain ratio when it has no ``for:``)."""
    if trigger.for_s <= 0:
        return c.RECORD_TRIGGER_RATIO
    return c.trigger_held_record(format_duration(trigger.for_s))


def held_selector(trigger: Trigger, region: str) -> str:
    """``streamslo:trigger_ratio:held2m{region="eu-west-1",trigger="scale_out"}``."""
    return promql.selector(held_record(trigger), **{c.LABEL_REGION: region, c.LABEL_TRIGGER: trigger.name})


def clause_expr(spec: Spec, trigger: Trigger, cond: Condition, op: str) -> str:
    """One clause's value ``op`` its limit, per region, with the min-events guard.

    ``op`` is ``">"`` for the alert's condition (``alerts/alerting.py``) and ``"/"``
    for the ratio the autoscaler reads (:func:`clause_ratio`): one expression, two uses.
    """
    window = format_duration(trigger.window_s)
    kind = spec.evaluate_kind
    if cond.above_ratio is not None:
        expr = f"(\n{promql.sli_ratio(cond.sli, window, kind)}\n) {op} {promql.fmt_number(cond.above_ratio)}"
    else:
        assert cond.quantile is not None and cond.above_s is not None
        gauge = promql.quantile_gauge(cond.sli, cond.quantile, window, kind)
        expr = f"max by ({c.LABEL_REGION}) ({gauge}) {op} {promql.fmt_number(cond.above_s)}"
    if trigger.min_events <= 0:
        return expr
    events = promql.events_in_window(cond.sli, window, kind)
    return promql.and_on(expr, f"{events} >= {trigger.min_events}", (c.LABEL_REGION,))


def clause_ratio(spec: Spec, trigger: Trigger, cond: Condition) -> str:
    """One clause's value divided by its limit, per region, with the min-events guard."""
    return clause_expr(spec, trigger, cond, "/")


def _ratio_rule(spec: Spec, trigger: Trigger) -> Rule:
    # Each clause gets its own `clause` label first: `or` would otherwise keep
    # only the first clause of a region, not the worst.
    clauses = [
        f'label_replace(\n{clause_ratio(spec, trigger, cond)},\n"clause", "{i}", "", "")'
        for i, cond in enumerate(trigger.conditions)
    ]
    expr = f"max by ({c.LABEL_REGION}) (\n" + "\nor\n".join(clauses) + "\n)"
    return {"record": c.RECORD_TRIGGER_RATIO, "expr": expr, "labels": {c.LABEL_TRIGGER: trigger.name}}


def _held_rule(trigger: Trigger) -> Rule:
    ratio = promql.selector(c.RECORD_TRIGGER_RATIO, **{c.LABEL_TRIGGER: trigger.name})
    held = format_duration(trigger.for_s)
    return {"record": held_record(trigger), "expr": f"min_over_time({ratio}[{held}])"}


def autoscaling_group(spec: Spec) -> Group:
    """The recording group for every scaled trigger (empty ``rules`` when there is none)."""
    rules: list[Rule] = []
    for trigger in sorted(scaled_triggers(spec), key=lambda t: t.name):
        rules.append(_ratio_rule(spec, trigger))
        if trigger.for_s > 0:
            rules.append(_held_rule(trigger))
    return {"name": c.GROUP_AUTOSCALING_RECORDINGS, "rules": rules}
