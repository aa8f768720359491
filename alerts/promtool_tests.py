"""Generated ``promtool test rules`` files: proof that every alert fires when it should.

Use :func:`test_files` to build the test files for a spec; ``promtool test
rules *.test.yml`` (next to ``rules.yml``) then checks, with synthetic series:

- **burn tiers** (``rules.tier-<name>.test.yml``, one file per tier at its own
  evaluation step; a group per tested SLO, see :func:`tested_slos`): after a good
  history, region ``incident`` turns bad at 1.1x the tier's threshold ratio (factor x budget);
  no alert at 80 % of the expected detection time (factor x budget x long
  window / error ratio), the alert (right labels and annotations) after it
  plus ``for:``; region ``below`` runs at 0.9x the threshold and stays silent
  even when both windows are saturated; region ``quiet`` burns as fast as
  ``incident`` with fewer events than the low-traffic guard asks and stays
  silent;
- **operational triggers** (``rules.test.yml``), one group each: region ``incident`` holds the
  condition and fires after ``for:``; ``brief`` holds it for half of ``for:``
  and stays silent; ``quiet`` holds it below the min-events guard; each
  ratio clause (``above_ratio``) fires in a region named after its SLI
  (``errors``, ``rebuffering``) on its own;
- **recorded ratios** (``rules.records.test.yml``), one group per SLO: with a
  known fraction of bad events, its shortest error-ratio record and its
  low-traffic event count are exact (:func:`record_test`);
- **pipeline health** (``rules.pipeline.test.yml``): ``alerts/promtool_pipeline.py``.

Everything is computed from the spec and the same rule builders that write
``rules.yml``; nothing is hand-written. Evaluation times stay off window
edges (promtool 2.42's range selectors are closed at both ends).

>>> from slo.spec import load_spec
>>> spec, _ = load_spec()
>>> tier_step(spec.tiers[0])
150
"""

from __future__ import annotations

import math
from typing import Any

from alerts import alerting, long_windows, promtool_pipeline, recording
from alerts import promtool_series as ps
from slo import conventions as c
from slo import promql
from slo.budget import detection_time_s
from slo.durations import format_duration
from slo.model import SLO, Condition, ResolvedTier, Spec, Tier, Trigger

__all__ = [
    "FIRE_MARGIN",
    "RECORD_EVENTS",
    "RECORD_RATIO",
    "REGIONS",
    "burn_test",
    "record_test",
    "records_step",
    "test_files",
    "tested_slos",
    "tier_step",
    "trigger_step",
    "trigger_test",
]

# Synthetic region names used by the tests (never real regions).
# A trigger's ratio clauses fire in regions named after their SLI.
REGIONS = {
    "incident": "incident", "below": "below", "quiet": "quiet", "brief": "brief", "exact": "exact",
}
# Error ratio of the firing region, as a multiple of the tier threshold ratio.
FIRE_MARGIN = 1.1
# Error ratio of the silent region, as a multiple of the tier threshold ratio.
SILENT_MARGIN = 0.9
# Rule groups evaluate one after another (records, burn rates, alerts), so an
# alert can lag its inputs by a few evaluations.
LAG_STEPS = 3

def tier_step(tier: Tier) -> int:
    """Evaluation interval (whole seconds) for one tier's test file.

    About half the short window, so a short-window rate sees three samples and a
    group needs about 2 x long / step evaluations; it must divide both windows
    so windows are whole steps. promtool evaluates every rule at every step,
    which is why each tier gets its own file and step.
    """
    windows: tuple[int, ...] = (int(tier.long_s), int(tier.short_s))
    if long_windows.is_counted(tier.long_s):
        # A counted window sums one count per aligned hour: the step must
        # land on every hour (alerts/long_windows.py).
        windows += (long_windows.INTERVAL_S,)
    for step in range(max(1, windows[1] // 2), 0, -1):
        if all(w % step == 0 for w in windows):
            return step
    return 1


def trigger_step(spec: Spec) -> int:
    """Evaluation interval for the trigger tests: a tenth of the shortest ``for:`` (1 s .. 60 s)."""
    holds = [int(t.for_s) for t in spec.triggers if t.for_s > 0] or [60]
    return max(1, min(60, min(holds) // 10))


def tested_slos(spec: Spec, tier_index: int) -> list[SLO]:
    """The SLOs a tier is tested on: one latency SLO and every ratio or time-ratio SLO.

    An adapted latency SLO is preferred (its promtool test proves the adapted
    factor fires). Testing every latency SLO would cost promtool seconds per
    SLO for no new evidence: they share the expression builder and differ only
    in threshold and budget, which the golden files pin. Each ratio SLO reads
    counters of its own (errors, exits before start, stall and played
    seconds), so each is tested.
    """
    ordered = sorted(spec.slos, key=lambda s: s.name)
    latency = [s for s in ordered if s.kind == c.SLI_KIND_LATENCY]
    adapted = [s for s in latency if spec.resolved_tiers(s)[tier_index].adapted]
    chosen = (adapted or latency)[:1] + [s for s in ordered if s.kind != c.SLI_KIND_LATENCY]
    return sorted(chosen, key=lambda s: s.name)


def burn_test(spec: Spec, slo: SLO, resolved: ResolvedTier, step: int, runbook_base: str) -> ps.TestGroup:
    """One promtool test group proving one (SLO, tier) alert fires, and only when it should."""
    tier = resolved.tier
    rule = alerting.burn_rule(spec, slo, resolved, runbook_base)
    threshold = resolved.factor * slo.budget
    fire_ratio = min(1.0, FIRE_MARGIN * threshold)
    long_n, short_n = int(tier.long_s) // step, int(tier.short_s) // step
    for_n = math.ceil(tier.for_s / step)
    guard = spec.low_traffic_min_events
    per_sample = max(100.0, math.ceil(4 * guard / long_n))
    history = long_n + 2
    # Detection time counted in evaluation steps: the long window is long_n steps.
    detect_n = detection_time_s(resolved.factor, slo.budget, long_n, fire_ratio)
    assert detect_n is not None, "resolve_tier keeps every threshold below 1, fire_ratio is above it"
    before_n = max(1, math.floor(0.8 * detect_n) - 1)
    # Off the window edge: at least one step past the crossing, plus lag and for:.
    fire_n = max(math.ceil(detect_n) + 1, short_n) + for_n + LAG_STEPS
    total = history + fire_n + 1
    kind = spec.evaluate_kind
    series = ps.sli_series(slo, kind, REGIONS["incident"], per_sample, fire_ratio, history, total - history)
    # "below" burns at 0.9x from the start, so both its windows are saturated
    # at 0.9x the threshold long before the incident region fires.
    series += ps.sli_series(slo, kind, REGIONS["below"], per_sample, SILENT_MARGIN * threshold, 0, total)
    if guard > 0:
        quiet = guard / (2 * long_n)
        series += ps.sli_series(slo, kind, REGIONS["quiet"], quiet, fire_ratio, history, total - history)
    firing = ps.expected(rule, {c.LABEL_REGION: REGIONS["incident"]})
    name = rule["alert"]

    def at(n: int) -> str:
        return format_duration((history + n) * step)

    detect_s = detect_n * step + tier.for_s
    return {
        "name": (
            f"{name} {slo.name}: fires {format_duration(round(detect_s))} after the error ratio "
            f"reaches {fire_ratio:.4g} ({FIRE_MARGIN:g}x {resolved.factor:g}x{slo.budget:g}), "
            f"silent at {SILENT_MARGIN:g}x and below {guard} events"
        ),
        "interval": format_duration(step),
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": at(before_n), "alertname": name, "exp_alerts": []},
            {"eval_time": at(fire_n), "alertname": name, "exp_alerts": [firing]},
        ],
    }


# --- operational triggers ------------------------------------------------------------


def _gauge(spec: Spec, trigger: Trigger, cond: Condition, region: str, values: str) -> ps.Series:
    assert cond.quantile is not None
    labels = {
        c.LABEL_REGION: region,
        c.LABEL_SLI: cond.sli,
        c.LABEL_KIND: spec.evaluate_kind,
        c.LABEL_QUANTILE: promql.quantile_label(cond.quantile),
        c.LABEL_WINDOW: format_duration(trigger.window_s),
    }
    return ps.series(c.METRIC_LATENCY_QUANTILE, labels, values)


def _levels(low: float, high: float, segments: list[tuple[bool, int]]) -> str:
    """A gauge at ``low`` or ``high`` for runs of samples (``(True, 5)``: five samples high)."""
    return " ".join(f"{ps.num(high if up else low)}+0x{n - 1}" for up, n in segments)


def trigger_test(spec: Spec, trigger: Trigger, step: int, runbook_base: str) -> ps.TestGroup:
    """One promtool test group: the trigger fires after ``for:``, not when shorter or quiet."""
    rule = alerting.trigger_rule(spec, trigger, runbook_base)
    name = rule["alert"]
    sample = max(1, int(trigger.window_s) // 6)
    # A full events window of normal traffic first; onset on a sample and an evaluation.
    grid = math.lcm(step, sample)
    onset = math.ceil((int(trigger.window_s) + 2 * step) / grid) * grid
    held = int(trigger.for_s)
    pending_at = onset + (held // 2 // step) * step
    fire_at = onset + math.ceil(held / step) * step + LAG_STEPS * step
    total = fire_at // sample + 2
    before, after = onset // sample, total - onset // sample
    per_window = max(4 * trigger.min_events, 100)
    n = per_window * sample / trigger.window_s
    n_quiet = trigger.min_events * sample / (2 * trigger.window_s)
    kind = spec.evaluate_kind
    series: list[ps.Series] = []
    expected = []
    latency = [cond for cond in trigger.conditions if cond.above_ratio is None]
    ratios = [cond for cond in trigger.conditions if cond.above_ratio is not None]
    if latency:
        cond = latency[0]
        assert cond.above_s is not None
        low, high = 0.5 * cond.above_s, 1.5 * cond.above_s
        brief_n = (held // 2) // sample
        runs = {
            REGIONS["incident"]: ([(False, before), (True, after)], n),
            REGIONS["brief"]: ([(False, before), (True, brief_n), (False, after - brief_n)], n),
            REGIONS["quiet"]: ([(False, before), (True, after)], n_quiet),
        }
        for region, (segments, rate) in runs.items():
            if region == REGIONS["quiet"] and trigger.min_events <= 0:
                continue
            series.append(_gauge(spec, trigger, cond, region, _levels(low, high, segments)))
            labels = {c.LABEL_REGION: region, c.LABEL_KIND: kind, c.LABEL_SLI: cond.sli}
            series.append(ps.series(c.METRIC_LATENCY_COUNT, labels, ps.ramp([(rate, before + after)])))
        expected.append(ps.expected(rule, {c.LABEL_REGION: REGIONS["incident"]}))
    for cond in ratios:
        # A region per ratio clause, named after its SLI: each clause fires on its own.
        assert cond.above_ratio is not None
        ratio = min(1.0, 5 * cond.above_ratio)
        series += ps.ratio_series(cond.sli, kind, cond.sli, n, ratio, before, after)
        expected.append(ps.expected(rule, {c.LABEL_REGION: cond.sli}))
    expected.sort(key=lambda e: e["exp_labels"][c.LABEL_REGION])
    return {
        "name": (
            f"{name}: fires {format_duration(held)} after its condition holds, "
            f"silent when it holds for half that or below {trigger.min_events} events"
        ),
        "interval": format_duration(sample),
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": format_duration(pending_at), "alertname": name, "exp_alerts": []},
            {"eval_time": format_duration(fire_at), "alertname": name, "exp_alerts": expected},
        ],
    }


# --- recorded SLI ratios and event counts --------------------------------------------

# The bad fraction of the records test's series, and its events per sample.
RECORD_RATIO = 0.25
RECORD_EVENTS = 100


def records_step(spec: Spec) -> int:
    """Evaluation interval for the records test: about half the shortest window, dividing it.

    A rate over the shortest window then sees three samples (two where ranges
    are open on the left, as from Prometheus 3).
    """
    window = int(min(spec.alert_windows_s))
    return next(step for step in range(max(1, window // 2), 0, -1) if window % step == 0)


def record_test(spec: Spec, slo: SLO, step: int) -> ps.TestGroup:
    """One promtool test group: ``slo``'s shortest error-ratio record and its guard's event count are exact.

    The series run at :data:`RECORD_RATIO` bad from the start, :data:`RECORD_EVENTS`
    events per sample: the ratio record must be exactly that fraction (a rule
    whose formula differs from ``promql.RATIO_COUNTERS``, e.g. stall / played for
    rebuffering, gives another number; the table itself is pinned independently
    by ``tests/test_qoe_rules.py``), and the event count of the shortest
    raw long window must be every event of the window (what
    ``low_traffic_min_events`` counts: seconds watched for rebuffering).
    """
    window_s = min(spec.alert_windows_s)
    # The guard is checked on the shortest tier long window read from raw samples, if any.
    guard_s = next((w for w in recording.long_windows(spec) if not long_windows.is_counted(w)), None)
    eval_n = int(max(window_s, guard_s or 0)) // step + 2
    region = REGIONS["exact"]
    series = ps.sli_series(slo, spec.evaluate_kind, region, RECORD_EVENTS, RECORD_RATIO, 0, eval_n + 1)
    checks = []

    def check(record: str, window: str, value: float, scale: float = 1.0) -> dict[str, Any]:
        labels = recording.slo_labels(slo, window) | {c.LABEL_REGION: region}
        scaled = f"{ps.num(scale)} * " if scale != 1 else ""
        return {
            "expr": f"round({scaled}{promql.selector(record, **{c.LABEL_SLO: slo.name})})",
            "eval_time": format_duration(eval_n * step),
            "exp_samples": [{"labels": promql.selector("", **labels), "value": round(value, 9)}],
        }

    window = format_duration(window_s)
    checks.append(check(c.sli_error_record(window), window, 1000 * RECORD_RATIO, scale=1000))
    if guard_s is not None:
        guard = format_duration(guard_s)
        checks.append(check(c.events_record(guard), guard, RECORD_EVENTS * guard_s / step))
    return {
        "name": (
            f"{slo.name}: the {window} error ratio is exactly {RECORD_RATIO:g} when {RECORD_RATIO:g} "
            f"of its events are bad, and the guard counts every event"
        ),
        "interval": format_duration(step),
        "input_series": series,
        "promql_expr_test": checks,
    }


def test_files(spec: Spec, rules_file: str, runbook_base: str) -> dict[str, dict[str, Any]]:
    """Every promtool test document for ``spec``, by file name.

    ``rules.test.yml`` holds the operational-trigger tests,
    ``rules.records.test.yml`` the exact recorded ratios,
    ``rules.pipeline.test.yml`` the pipeline-health ones;
    ``rules.tier-<name>.test.yml`` one file per burn tier, each at its own
    evaluation step (a 3d tier evaluated every minute would take promtool
    minutes; every 3 hours it takes a second).
    """
    files: dict[str, dict[str, Any]] = {}
    step = trigger_step(spec)
    files["rules.test.yml"] = {
        "rule_files": [rules_file],
        "evaluation_interval": format_duration(step),
        "group_eval_order": ps.GROUP_ORDER,
        "tests": [trigger_test(spec, t, step, runbook_base) for t in sorted(spec.triggers, key=lambda t: t.name)],
    }
    records = records_step(spec)
    files["rules.records.test.yml"] = {
        "rule_files": [rules_file],
        "evaluation_interval": format_duration(records),
        "group_eval_order": ps.GROUP_ORDER,
        "tests": [record_test(spec, slo, records) for slo in sorted(spec.slos, key=lambda s: s.name)],
    }
    files["rules.pipeline.test.yml"] = {
        "rule_files": [rules_file],
        "evaluation_interval": format_duration(promtool_pipeline.PIPELINE_STEP),
        "group_eval_order": ps.GROUP_ORDER,
        "tests": promtool_pipeline.pipeline_tests(spec, runbook_base),
    }
    for i, tier in enumerate(spec.tiers):
        step = tier_step(tier)
        groups = [
            burn_test(spec, slo, spec.resolved_tiers(slo)[i], step, runbook_base)
            for slo in tested_slos(spec, i)
        ]
        files[f"rules.tier-{tier.name}.test.yml"] = {
            "rule_files": [rules_file],
            "evaluation_interval": format_duration(step),
            "group_eval_order": ps.GROUP_ORDER,
            "tests": groups,
        }
    return files
