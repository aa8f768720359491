"""The SLO overview dashboard: percentiles vs thresholds, burn rates, budget, traffic, viewing quality.

Use :func:`dashboard` to get the JSON dict for a spec. Every query is built
from ``slo/promql.py`` and the names in ``slo/conventions.py``; the
``$region`` variable filters every panel. Rows: latency percentiles (every
latency SLI, live latency included), error budget and burn rates, traffic and
errors (the error ratio and errors by class), viewing quality (rebuffer and
exits-before-start ratios against their objectives) and, when the spec
declares a dimension, each opted-in SLO's error ratio by dimension value.

>>> from slo.spec import load_spec
>>> spec, _ = load_spec()
>>> dashboard(spec, "generated")["uid"]
'streamslo-slo-overview'
"""

from __future__ import annotations

from typing import Any

from dashboards import panels as p
from slo import conventions as c
from slo import promql
from slo.durations import format_duration
from slo.model import SLO, Spec

__all__ = ["UID", "dashboard"]

UID = "streamslo-slo-overview"
_COLORS = ("yellow", "orange", "red", "purple")


def _latency_panel(spec: Spec, sli: str) -> Any:
    window = format_duration(min(spec.quantile_windows_s))
    slos = sorted((s for s in spec.slos if s.sli == sli and s.quantile is not None), key=lambda s: s.quantile or 0)
    queries = [
        (
            promql.region_selector(
                c.METRIC_LATENCY_QUANTILE,
                **{
                    c.LABEL_SLI: sli,
                    c.LABEL_KIND: spec.evaluate_kind,
                    c.LABEL_QUANTILE: promql.quantile_label(s.quantile or 0),
                    c.LABEL_WINDOW: window,
                },
            ),
            f"p{(s.quantile or 0) * 100:g} {{{{{c.LABEL_REGION}}}}}",
        )
        for s in slos
    ]
    thresholds = [(s.threshold_s or 0.0, _COLORS[i % len(_COLORS)]) for i, s in enumerate(slos)]
    limits = ", ".join(f"p{(s.quantile or 0) * 100:g} <= {(s.threshold_s or 0) * 1000:g} ms" for s in slos)
    return p.timeseries(
        f"{sli} percentiles ({window} window) vs objectives",
        f"Sketch quantiles of {sli} ({spec.evaluate_kind}); dashed lines are the objectives: {limits}.",
        queries,
        "s",
        thresholds,
    )


def _burn_panel(spec: Spec, tier_index: int) -> Any:
    tier = spec.tiers[tier_index]
    long_w, short_w = format_duration(tier.long_s), format_duration(tier.short_s)
    queries = [
        (promql.region_selector(c.burn_rate_record(w)), f"{{{{{c.LABEL_SLO}}}}} {w} {{{{{c.LABEL_REGION}}}}}")
        for w in (long_w, short_w)
    ]
    return p.timeseries(
        f"Burn rate, {tier.name} tier ({long_w} / {short_w}, {tier.severity})",
        f"Error-budget burn rate per SLO over {long_w} and {short_w}. The {tier.severity} alert fires "
        f"when both are >= {tier.factor:g}x (lower for SLOs whose budget makes {tier.factor:g}x impossible).",
        queries,
        "none",
        [(tier.factor, "red")],
    )


# What a ratio SLO's panel calls its ratio (the errors SLO has its own panel).
_RATIO_TITLES = {
    c.SLI_EXITS_BEFORE_START: "Exits before start ratio",
    c.SLI_REBUFFERING: "Rebuffer ratio",
}


def _ratio_panel(spec: Spec, slo: SLO) -> Any:
    """A ratio SLO against its objective: the in-stream window ratio and the shortest tier record."""
    live = format_duration(min(spec.quantile_windows_s))
    short = format_duration(min(t.short_s for t in spec.tiers))
    labels = {c.LABEL_SLO: slo.name}
    queries = [
        (
            promql.region_selector(c.METRIC_SLI_RATIO, **labels, **{c.LABEL_WINDOW: live}),
            f"{live} (stream) {{{{{c.LABEL_REGION}}}}}",
        ),
        (promql.region_selector(c.sli_error_record(short), **labels), f"{short} {{{{{c.LABEL_REGION}}}}}"),
    ]
    return p.timeseries(
        f"{_RATIO_TITLES[slo.sli]} ({live} / {short}) vs objective",
        f"{slo.description or slo.sli}: the exact in-stream ratio over {live} and the recorded "
        f"ratio over {short}; the dashed line is the objective (<= {slo.budget:.3g}).",
        queries,
        "percentunit",
        [(slo.budget, "red")],
    )


def _error_classes_panel(spec: Spec) -> Any:
    """Errors by class: fatal (the SLO's), warnings and business refusals (in no SLI), per second."""
    kind = {c.LABEL_KIND: spec.evaluate_kind}
    classes = ((c.METRIC_ERRORS, "fatal"), (c.METRIC_WARNINGS, "warning"), (c.METRIC_BUSINESS_ERRORS, "business"))
    return p.timeseries(
        "Playback errors by class",
        "Fatal errors count against the errors SLO; warnings are counted, no SLO error; business "
        "refusals (geo-block, entitlement, concurrency) are neither attempts nor errors.",
        [
            (
                promql.sum_by((c.LABEL_REGION,), promql.rate(promql.region_selector(metric, **kind), "1m")),
                f"{name} {{{{{c.LABEL_REGION}}}}}",
            )
            for metric, name in classes
        ],
        "ops",
    )


def _dimension_panel(spec: Spec, slo: SLO, dimension: str) -> Any:
    """One opted-in SLO's error ratio per (region, dimension value) over the shortest tier window."""
    short = format_duration(min(t.short_s for t in spec.tiers))
    by = (c.LABEL_REGION, dimension)
    expr = promql.sli_error_ratio(slo, short, spec.evaluate_kind, by=by, region_re="$region")
    return p.timeseries(
        f"{slo.name} by {dimension} ({short})",
        f"Bad / all events of {slo.name} per {dimension} and region (values outside the "
        f"spec's allow-list are {c.REGION_OTHER}); the dashed line is the budget.",
        [(expr, f"{{{{{dimension}}}}} {{{{{c.LABEL_REGION}}}}}")],
        "percentunit",
        [(slo.budget, "red")],
    )


def dashboard(spec: Spec, generated_by: str) -> dict[str, Any]:
    """The overview dashboard JSON for ``spec``."""
    kind = {c.LABEL_KIND: spec.evaluate_kind}
    period = format_duration(spec.period_s)
    panels: list[Any] = [p.row("Latency percentiles")]
    panels += [_latency_panel(spec, sli) for sli in spec.latency_slis]
    panels.append(p.row("Error budget"))
    panels.append(
        p.bargauge(
            f"Error budget remaining ({period})",
            "Fraction of the period's error budget left per SLO and region (1 = untouched, <= 0 = spent).",
            [(promql.region_selector(c.RECORD_BUDGET_REMAINING), f"{{{{{c.LABEL_SLO}}}}} {{{{{c.LABEL_REGION}}}}}")],
            "percentunit",
            0.0,
            1.0,
        )
    )
    panels += [_burn_panel(spec, i) for i in range(len(spec.tiers))]
    panels.append(p.row("Traffic and errors"))
    panels.append(
        p.timeseries(
            "Event rate",
            f"{spec.evaluate_kind} latency events and playback attempts per second.",
            [
                (
                    f"sum by ({c.LABEL_REGION}, {c.LABEL_SLI}) "
                    f"(rate({promql.region_selector(c.METRIC_LATENCY_COUNT, **kind)}[1m]))",
                    f"{{{{{c.LABEL_SLI}}}}} {{{{{c.LABEL_REGION}}}}}",
                ),
                (
                    f"sum by ({c.LABEL_REGION}) (rate({promql.region_selector(c.METRIC_ATTEMPTS, **kind)}[1m]))",
                    f"attempts {{{{{c.LABEL_REGION}}}}}",
                ),
            ],
            "reqps",
        )
    )
    short = format_duration(min(t.short_s for t in spec.tiers))
    errors = [s for s in spec.slos if s.sli == c.SLI_ERRORS]
    error_queries = [
        (promql.region_selector(c.sli_error_record(short), **{c.LABEL_SLO: s.name}), f"{{{{{c.LABEL_REGION}}}}}")
        for s in errors
    ]
    panels.append(
        p.timeseries(
            f"Playback error ratio ({short})",
            "Fatal playback errors / playback attempts; the dashed line is the objective.",
            error_queries,
            "percentunit",
            [(s.budget, "red") for s in errors[:1]],
        )
    )
    panels.append(_error_classes_panel(spec))
    quality = [s for s in sorted(spec.slos, key=lambda s: s.name) if s.sli in _RATIO_TITLES]
    if quality:
        panels.append(p.row("Viewing quality"))
        panels += [_ratio_panel(spec, s) for s in quality]
    if spec.dimension is not None:
        panels.append(p.row(f"By {spec.dimension.name}"))
        panels += [
            _dimension_panel(spec, s, spec.dimension.name)
            for s in sorted(spec.slos, key=lambda s: s.name)
            if spec.splits(s.sli)
        ]
    return p.board(
        UID,
        f"streamslo: SLO overview ({spec.name})",
        generated_by,
        ["streamslo", "slo", "generated"],
        panels,
        [p.region_template(c.METRIC_LATENCY_COUNT, spec.region_labels)],
    )
