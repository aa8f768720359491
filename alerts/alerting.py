"""Alert rules: burn-rate tiers, operational triggers, pipeline health.

Use :func:`burn_group`, :func:`trigger_group` and :func:`pipeline_group` to get
the three alert groups for a spec. Burn alerts read the records of
``alerts/recording.py``; triggers read the in-stream quantile gauges.

Every alert carries ``severity`` (``page`` / ``ticket``, what Alertmanager
routes on), ``summary``, ``description`` and a ``runbook_url`` into
``docs/runbooks.md``. Burn alerts also carry ``tier`` and ``slo`` so
Alertmanager can let a page inhibit the ticket of the same SLO and region.

A burn alert's severity is its tier's, capped by the SLO's ``max_severity``
(``SLO.severity_of``): an SLO with ``max_severity: ticket`` never pages, its
page tiers alert as tickets and say so in a ``severity_capped`` annotation.

Each tier gets its own alert name (``StreamSLOErrorBudgetBurnFast``): a page
and a ticket for the same SLO are different alerts, and promtool tests can
check one tier without predicting the others.

>>> from slo.spec import load_spec
>>> spec, _ = load_spec()
>>> burn_alert_name(spec.tiers[0])
'StreamSLOErrorBudgetBurnFast'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts.recording import (
    Group,
    Rule,
    counts_group,
    long_window_group,
    meta_group,
    sli_group,
    slo_labels,
)
from alerts.trigger_signal import autoscaling_group, clause_expr
from slo import conventions as c
from slo import promql
from slo.durations import format_duration
from slo.model import SLO, TARGET_HPA, TARGET_ROUTE53, Condition, ResolvedTier, Spec, Tier, Trigger

__all__ = [
    "BURN_LABELS",
    "PIPELINE",
    "RUNBOOK_ANCHORS",
    "PipelineThresholds",
    "adds_capacity",
    "alert_label_names",
    "all_groups",
    "burn_alert_name",
    "burn_group",
    "burn_rule",
    "moves_traffic",
    "pipeline_group",
    "render",
    "trigger_alert_name",
    "trigger_group",
    "trigger_rule",
    "trigger_runbook_anchor",
    "trigger_severity",
]

# Anchors in docs/runbooks.md, one section per fixed alert family; a trigger's
# alert links the section of its role (trigger_runbook_anchor).
RUNBOOK_ANCHORS: dict[str, str] = {
    c.ALERT_BURN_RATE: "error-budget-burn",
    c.ALERT_NO_DATA: "no-data-from-a-region",
    c.ALERT_INGEST_REFUSALS: "ingest-refusals-high",
    c.ALERT_CONSUMER_LAG: "consumer-lag-growing",
}


@dataclass(frozen=True)
class PipelineThresholds:
    """Pipeline-health alert settings: fixed, documented in docs/alerting.md."""

    no_data_window: str = "10m"
    no_data_for: str = "5m"
    refusal_window: str = "5m"
    refusal_ratio: float = 0.05
    refusal_for: str = "10m"
    lag_window: str = "10m"
    lag_min_records: int = 1000
    lag_for: str = "15m"


PIPELINE = PipelineThresholds()

# What a burn-rate expression yields per series; the rule adds severity and tier.
BURN_LABELS = (c.LABEL_REGION, c.LABEL_SLI, c.LABEL_SLO)


def alert_label_names(spec: Spec) -> dict[str, frozenset[str]]:
    """Every alert name of ``spec`` -> the exact label names it fires with.

    The table of docs/alerting.md ("Alert labels"); the tests evaluate every
    generated alert in promtool against it.
    """
    base = {"alertname", c.LABEL_SEVERITY}
    out = {burn_alert_name(t): frozenset(base | {*BURN_LABELS, c.LABEL_TIER}) for t in spec.tiers}
    out |= {trigger_alert_name(t): frozenset(base | {c.LABEL_REGION, c.LABEL_TRIGGER}) for t in spec.triggers}
    out[c.ALERT_NO_DATA] = frozenset(base | {c.LABEL_REGION})
    out[c.ALERT_INGEST_REFUSALS] = frozenset(base)
    out[c.ALERT_CONSUMER_LAG] = frozenset(base)
    return out


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").replace(".", "_").split("_"))


def runbook_url(base: str, alert_family: str) -> str:
    return f"{base}#{RUNBOOK_ANCHORS[alert_family]}"


# The runbook section of a trigger that sets no ``runbook:``, by what it drives.
TRIGGER_RUNBOOK_FAILOVER = "region-failover"
TRIGGER_RUNBOOK_SCALE_OUT = "scale-out"


def moves_traffic(trigger: Trigger) -> bool:
    """Whether the trigger fails its region over (it has a Route 53 target)."""
    return bool(trigger.targets_of(TARGET_ROUTE53))


def adds_capacity(trigger: Trigger) -> bool:
    """Whether the trigger scales its region out (it has an HPA target)."""
    return bool(trigger.targets_of(TARGET_HPA))


def trigger_runbook_anchor(trigger: Trigger) -> str:
    """The spec's ``runbook:``, else ``region-failover`` when it moves traffic, else ``scale-out``."""
    if trigger.runbook:
        return trigger.runbook
    return TRIGGER_RUNBOOK_FAILOVER if moves_traffic(trigger) else TRIGGER_RUNBOOK_SCALE_OUT


def render(template: str, labels: dict[str, str]) -> str:
    """Expand ``{{ $labels.x }}`` like Prometheus does (the only templating we use).

    The promtool test generator uses this to write the annotations it expects.
    """
    out = template
    for key, value in labels.items():
        out = out.replace(f"{{{{ $labels.{key} }}}}", value)
    return out


# --- burn-rate tiers ------------------------------------------------------------


def burn_alert_name(tier: Tier) -> str:
    return f"{c.ALERT_BURN_RATE}{_camel(tier.name)}"


def _burn_expr(spec: Spec, slo: SLO, resolved: ResolvedTier) -> str:
    factor = promql.fmt_number(resolved.factor)
    long_w, short_w = format_duration(resolved.tier.long_s), format_duration(resolved.tier.short_s)
    on = (c.LABEL_REGION, c.LABEL_SLO)
    # `and` keeps the left operand's labels: aggregate the long-window record
    # to the documented set so its `window` label never reaches the alert.
    long_burn = promql.max_by(
        BURN_LABELS, promql.selector(c.burn_rate_record(long_w), **{c.LABEL_SLO: slo.name})
    )
    short_burn = promql.selector(c.burn_rate_record(short_w), **{c.LABEL_SLO: slo.name})
    expr = promql.and_on(f"{long_burn} >= {factor}", f"{short_burn} >= {factor}", on)
    if spec.low_traffic_min_events > 0:
        events = promql.selector(c.events_record(long_w), **{c.LABEL_SLO: slo.name})
        expr = promql.and_on(expr, f"{events} >= {spec.low_traffic_min_events}", on)
    return expr


def burn_rule(spec: Spec, slo: SLO, resolved: ResolvedTier, runbook_base: str) -> Rule:
    """One multiwindow burn-rate alert: long AND short window burn >= factor."""
    tier = resolved.tier
    long_w, short_w = format_duration(tier.long_s), format_duration(tier.short_s)
    period = format_duration(spec.period_s)
    spent = resolved.factor * tier.long_s / spec.period_s
    annotations = {
        "summary": (
            f"{slo.name} is burning its error budget at >= {resolved.factor:g}x "
            f"in {{{{ $labels.region }}}} ({tier.name} tier)"
        ),
        "description": (
            f"The {slo.name} SLI error ratio ({slo.description or slo.sli}; objective "
            f"{slo.objective:.4g}) is above {resolved.factor * slo.budget:.4g} "
            f"({resolved.factor:g}x the {slo.budget:.4g} budget) over both {long_w} and {short_w} "
            f"in region {{{{ $labels.region }}}}. Sustained, this spends "
            f"{spent:.1%} of the {period} error budget every {long_w}."
        ),
        "runbook_url": runbook_url(runbook_base, c.ALERT_BURN_RATE),
    }
    if slo.severity_of(tier) != tier.severity:
        annotations["severity_capped"] = (
            f"the {tier.name} tier is a {tier.severity}; {slo.name} sets max_severity: "
            f"{slo.max_severity}, so it alerts as a {slo.severity_of(tier)}"
        )
    if resolved.adapted:
        annotations["factor_adapted"] = (
            f"tier factor {tier.factor:g}x can never fire for a {slo.budget:.4g} budget "
            f"(max burn {slo.max_burn_rate:.4g}x); adapted to {resolved.factor:g}x"
        )
    rule: Rule = {"alert": burn_alert_name(tier), "expr": _burn_expr(spec, slo, resolved)}
    if tier.for_s > 0:
        rule["for"] = format_duration(tier.for_s)
    rule["labels"] = {c.LABEL_SEVERITY: slo.severity_of(tier), c.LABEL_TIER: tier.name} | slo_labels(slo)
    rule["annotations"] = annotations
    return rule


def burn_group(spec: Spec, runbook_base: str) -> Group:
    rules = [
        burn_rule(spec, slo, resolved, runbook_base)
        for slo in sorted(spec.slos, key=lambda s: s.name)
        for resolved in spec.resolved_tiers(slo)
    ]
    return {"name": c.GROUP_BURN_ALERTS, "rules": rules}


# --- operational triggers ---------------------------------------------------------


def trigger_alert_name(trigger: Trigger) -> str:
    """The spec's ``alert:`` name, else ``StreamSLOTrigger<Name>``."""
    return trigger.alert or f"StreamSLOTrigger{_camel(trigger.name)}"


def trigger_severity(trigger: Trigger) -> str:
    """The spec's ``severity:`` (default ticket)."""
    return trigger.severity


def describe_condition(cond: Condition) -> str:
    """One clause in words: ``error ratio > 0.01``, ``rebuffering ratio > 0.02``, ``ttff p95 > 200 ms``."""
    if cond.above_ratio is not None:
        what = "error" if cond.sli == c.SLI_ERRORS else cond.sli.replace("_", " ")
        return f"{what} ratio > {cond.above_ratio:.4g}"
    assert cond.quantile is not None and cond.above_s is not None
    return f"{cond.sli} p{cond.quantile * 100:g} > {cond.above_s * 1000:g} ms"


def condition_expr(spec: Spec, trigger: Trigger, cond: Condition) -> str:
    """One clause of a trigger, per region, with its min-events guard."""
    return clause_expr(spec, trigger, cond, ">")


def trigger_rule(spec: Spec, trigger: Trigger, runbook_base: str) -> Rule:
    """Any condition true in a region for ``for``: one alert per region."""
    clauses = [f"(\n{condition_expr(spec, trigger, cond)}\n)" for cond in trigger.conditions]
    name = trigger_alert_name(trigger)
    window, held = format_duration(trigger.window_s), format_duration(trigger.for_s)
    conditions = "; ".join(describe_condition(cond) for cond in trigger.conditions)
    guard = f" with at least {trigger.min_events} events" if trigger.min_events else ""
    rule: Rule = {"alert": name, "expr": "\nor\n".join(clauses)}
    if trigger.for_s > 0:
        rule["for"] = held
    if trigger.recover_for_s > 0:
        # The spec's hysteresis: firing until the condition has been clear this
        # long, as the region health endpoint does (slo/health.py).
        rule["keep_firing_for"] = format_duration(trigger.recover_for_s)
    rule["labels"] = {c.LABEL_SEVERITY: trigger_severity(trigger), c.LABEL_TRIGGER: trigger.name}
    rule["annotations"] = {
        "summary": f"{trigger.action or trigger.name}: {{{{ $labels.region }}}} ({trigger.name} held for {held})",
        "description": (
            f"In region {{{{ $labels.region }}}}, over the last {window}{guard}, at least one of "
            f"[{conditions}] has held for {held}. Suggested action: {trigger.action or trigger.name}."
        ),
        "runbook_url": f"{runbook_base}#{trigger_runbook_anchor(trigger)}",
    }
    return rule


def trigger_group(spec: Spec, runbook_base: str) -> Group:
    rules = [trigger_rule(spec, t, runbook_base) for t in sorted(spec.triggers, key=lambda t: t.name)]
    return {"name": c.GROUP_TRIGGER_ALERTS, "rules": rules}


# --- pipeline health --------------------------------------------------------------


def _no_data_rule(spec: Spec, runbook_base: str) -> Rule:
    window = PIPELINE.no_data_window
    kind = {c.LABEL_KIND: spec.evaluate_kind}
    stopped = promql.sum_by(
        (c.LABEL_REGION,), promql.rate(promql.selector(c.METRIC_LATENCY_COUNT, **kind), window)
    )
    # A region that never reported (or a dead scrape) has no series at all:
    # absent_over_time per configured region catches it.
    missing = [
        promql.sum_by(
            (c.LABEL_REGION,),
            f"absent_over_time({promql.selector(c.METRIC_LATENCY_COUNT, **kind, **{c.LABEL_REGION: r})}[{window}])",
        )
        for r in sorted(spec.regions)
    ]
    return {
        "alert": c.ALERT_NO_DATA,
        "expr": "\nor\n".join([f"({stopped}) == 0", *missing]),
        "for": PIPELINE.no_data_for,
        "labels": {c.LABEL_SEVERITY: c.SEVERITY_TICKET},
        "annotations": {
            "summary": "No events from {{ $labels.region }}",
            "description": (
                f"No {spec.evaluate_kind} latency events from region {{{{ $labels.region }}}} for "
                f"{window}: every SLO of the region is blind. Either the region has no players, "
                "its beacons are refused or lost, or the pipeline stopped."
            ),
            "runbook_url": runbook_url(runbook_base, c.ALERT_NO_DATA),
        },
    }


def _refusals_rule(runbook_base: str) -> Rule:
    window = PIPELINE.refusal_window
    refused = f"sum(rate({c.METRIC_COLLECTOR_REFUSED}[{window}]))"
    beacons = f"sum(rate({c.METRIC_COLLECTOR_BEACONS}[{window}]))"
    ratio = promql.fmt_number(PIPELINE.refusal_ratio)
    return {
        "alert": c.ALERT_INGEST_REFUSALS,
        "expr": f"{refused}\n/\n{beacons}\n> {ratio}",
        "for": PIPELINE.refusal_for,
        "labels": {c.LABEL_SEVERITY: c.SEVERITY_TICKET},
        "annotations": {
            "summary": f"The collector refuses more than {PIPELINE.refusal_ratio:.0%} of beacons",
            "description": (
                f"Over {window}, refused beacons ({c.METRIC_COLLECTOR_REFUSED}) exceed "
                f"{PIPELINE.refusal_ratio:.0%} of all beacons. Check the reason label: "
                "a bad SDK release (invalid), a key problem (unauthorized) or rate limits."
            ),
            "runbook_url": runbook_url(runbook_base, c.ALERT_INGEST_REFUSALS),
        },
    }


def _lag_rule(runbook_base: str) -> Rule:
    window = PIPELINE.lag_window
    lag = f"sum({c.METRIC_STREAM_LAG})"
    growth = f"sum(deriv({c.METRIC_STREAM_LAG}[{window}]))"
    return {
        "alert": c.ALERT_CONSUMER_LAG,
        "expr": f"({lag} > {PIPELINE.lag_min_records})\nand\n({growth} > 0)",
        "for": PIPELINE.lag_for,
        "labels": {c.LABEL_SEVERITY: c.SEVERITY_TICKET},
        "annotations": {
            "summary": "Stream consumer lag is growing",
            "description": (
                f"The stream workers are more than {PIPELINE.lag_min_records} records behind "
                f"and the lag kept growing over {window}: SLIs and alerts are going stale. "
                "Add workers (up to the partition count) or find the slow stage."
            ),
            "runbook_url": runbook_url(runbook_base, c.ALERT_CONSUMER_LAG),
        },
    }


def pipeline_group(spec: Spec, runbook_base: str) -> Group:
    rules = [_no_data_rule(spec, runbook_base), _refusals_rule(runbook_base), _lag_rule(runbook_base)]
    return {"name": c.GROUP_PIPELINE_ALERTS, "rules": rules}


def all_groups(spec: Spec, runbook_base: str, raw_long_windows: bool = False) -> list[dict[str, Any]]:
    """Every rule group of ``rules.yml``, in evaluation order.

    ``raw_long_windows`` reads the >= 1d windows from raw samples instead of
    hourly counts (``alerts/long_windows.py``): only for benchmarks.
    """
    counted = [] if raw_long_windows else [counts_group(spec), long_window_group(spec)]
    groups = [
        *(g for g in counted[:1] if g["rules"]),
        sli_group(spec, raw_long_windows),
        *(g for g in counted[1:] if g["rules"]),
        meta_group(spec),
        burn_group(spec, runbook_base),
        trigger_group(spec, runbook_base),
        pipeline_group(spec, runbook_base),
    ]
    scaling = autoscaling_group(spec)
    if scaling["rules"]:
        groups.append(scaling)
    return groups
