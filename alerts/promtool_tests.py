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
  and stays silent; ``quiet`` holds it below the min-events guard; for a
  trigger with an error-ratio clause, region ``errors`` fires on that clause;
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

from alerts import alerting, long_windows, promtool_pipeline
from alerts import promtool_series as ps
from slo import conventions as c
from slo import promql
from slo.budget import detection_time_s
from slo.durations import format_duration
from slo.model import SLO, Condition, ResolvedTier, Spec, Tier, Trigger

__all__ = [
    "FIRE_MARGIN",
    "REGIONS",
    "burn_test",
    "test_files",
    "tested_slos",
    "tier_step",
    "trigger_step",
    "trigger_test",
]

# Synthetic region names used by the tests (never real regions).
REGIONS = {"incident": "incident", "below": "below", "quiet": "quiet", "brief": "brief", "errors": "errors"}
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
    """The SLOs a tier is tested on: one latency SLO and one error SLO.

    Adapted tiers are preferred (their promtool test proves the adapted factor
    fires). Testing every SLO would cost promtool seconds per SLO for no new
    evidence: SLOs of one shape share the expression builder and differ only
    in threshold and budget, which the golden files pin.
    """
    chosen: list[SLO] = []
    for latency in (True, False):
        shape = [s for s in sorted(spec.slos, key=lambda s: s.name) if s.is_latency is latency]
        adapted = [s for s in shape if spec.resolved_tiers(s)[tier_index].adapted]
        chosen += (adapted or shape)[:1]
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
    latency = [cond for cond in trigger.conditions if cond.sli != c.SLI_ERRORS]
    errors = [cond for cond in trigger.conditions if cond.sli == c.SLI_ERRORS]
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
    if errors:
        cond = errors[0]
        assert cond.above_ratio is not None
        ratio = min(1.0, 5 * cond.above_ratio)
        labels = {c.LABEL_REGION: REGIONS["errors"], c.LABEL_KIND: kind}
        series.append(ps.series(c.METRIC_ATTEMPTS, labels, ps.ramp([(n, before + after)])))
        series.append(ps.series(c.METRIC_ERRORS, labels, ps.ramp([(0, before), (n * ratio, after)])))
        expected.append(ps.expected(rule, {c.LABEL_REGION: REGIONS["errors"]}))
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


def test_files(spec: Spec, rules_file: str, runbook_base: str) -> dict[str, dict[str, Any]]:
    """Every promtool test document for ``spec``, by file name.

    ``rules.test.yml`` holds the operational-trigger tests,
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
