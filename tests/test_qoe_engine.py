"""Stage 2 and /metrics for the QoE SLIs (issue 16): ratio and time-ratio maths, the dimension, old states, memory.

Partials are built as stage 1 builds them (``tests/test_windows.make_partial``
for latencies, :func:`outcomes` and :func:`rebuffering` for the others) and
fed to :class:`slo.stage2.Stage2` on ``tests/specs/qoe.yaml`` (1 s panes,
windows 10 s .. 1 h, a ``cdn`` dimension on ttff and rebuffering).
"""

from __future__ import annotations

import base64
import math
import tracemalloc
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from slo import conventions as c
from slo.exposition import EngineCollector
from slo.model import Spec
from slo.partial import Partial
from slo.sketch import RELATIVE_ACCURACY
from slo.spec import load_spec, parse_spec
from slo.stage2 import Stage2
from slo.windows import Series
from tests.test_windows import MEMORY_LIMIT, make_partial

QOE_SPEC = Path(__file__).parent / "specs" / "qoe.yaml"
T0 = 1_764_000_000.0  # a pane-aligned epoch second
EU, US = "eu-west-1", "us-east-1"
NOW = T0 + 5.0


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec(QOE_SPEC)[0]


def outcomes(pane: float = 0.0, hi: int = 1, **counts: Any) -> Partial:
    """The errors partial of one pane: attempts, errors, exits, warnings, business."""
    fields: dict[str, Any] = {"region": EU, "kind": c.KIND_RUM, "source": "beacons/0", "lo": 0, "hi": hi}
    fields.update(counts)
    return Partial(sli=c.SLI_ERRORS, pane_start=T0 + pane, pane_s=1.0, max_event_time=T0 + pane + 0.5, **fields)


def rebuffering(pane: float = 0.0, hi: int = 1, **sums: Any) -> Partial:
    """The rebuffering partial of one pane: stalls, stall_s, played_s (and dim)."""
    fields: dict[str, Any] = {"region": EU, "kind": c.KIND_RUM, "source": "beacons/0", "lo": 0, "hi": hi}
    fields.update(sums)
    return Partial(sli=c.SLI_REBUFFERING, pane_start=T0 + pane, pane_s=1.0, max_event_time=T0 + pane + 0.5, **fields)


def fed(spec: Spec, *partials: Partial) -> Stage2:
    stage2 = Stage2(spec)
    for partial in partials:
        assert stage2.apply(partial)
    return stage2


# -- ratio and time-ratio SLOs ---------------------------------------------------


@pytest.mark.parametrize(
    ("partial", "slo", "ratio", "burn", "remaining"),
    [
        pytest.param(outcomes(attempts=1000, errors=20), "errors", 0.02, 2.0, -1.0,
                     id="errors: 20 fatal of 1000 attempts is a 2 % ratio, burn 2 against a 1 % budget"),
        pytest.param(outcomes(attempts=1000, errors=10, business=500), "errors", 0.01, 1.0, 0.0,
                     id="business errors are in neither attempts nor errors: the ratio stays 10 / 1000"),
        pytest.param(outcomes(attempts=1000, errors=10, warnings=300), "errors", 0.01, 1.0, 0.0,
                     id="warnings are counted apart and never errors"),
        pytest.param(outcomes(attempts=1000, exits=50), "exits_before_start", 0.05, 2.5, -1.5,
                     id="exits before start: 50 of 1000 attempts, burn 2.5 against a 2 % budget"),
        pytest.param(rebuffering(stalls=3, stall_s=3.0, played_s=597.0), "rebuffering", 0.005, 1.0, 0.0,
                     id="rebuffering: 3 s stalled of 600 s watched is exactly 0.5 %, burn 1"),
        pytest.param(rebuffering(stalls=1, stall_s=0.001, played_s=0.0), "rebuffering", 1.0, 200.0, -199.0,
                     id="a stall with nothing played is a ratio of 1"),
    ],
)
def test_ratio_slos_give_exact_ratios_burn_rates_and_budget(
    spec: Spec, partial: Partial, slo: str, ratio: float, burn: float, remaining: float
) -> None:
    figures = fed(spec, partial).snapshot(NOW).regions[EU].slos[slo]
    windows = (*spec.quantile_windows_s, spec.period_s)
    assert figures.ratios == {w: ratio for w in windows}
    assert figures.burn_rates == {w: pytest.approx(burn) for w in spec.alert_windows_s}
    assert figures.budget_remaining == pytest.approx(remaining)


def test_business_errors_never_burn_budget_nor_add_attempts(spec: Spec) -> None:
    base = fed(spec, outcomes(attempts=1000, errors=10)).snapshot(NOW).regions[EU]
    refused = fed(spec, outcomes(attempts=1000, errors=10, business=10_000)).snapshot(NOW).regions[EU]
    assert refused.slos["errors"].burn_rates == base.slos["errors"].burn_rates
    assert refused.slos["exits_before_start"].burn_rates == base.slos["exits_before_start"].burn_rates
    assert refused.slos["errors"].events == base.slos["errors"].events
    series = refused.series[(c.SLI_ERRORS, c.KIND_RUM)]
    assert (series.attempts, series.errors, series.business) == (1000, 10, 10_000)


def test_a_rebuffer_ratio_from_fractional_milliseconds_is_exact_to_the_microsecond(spec: Spec) -> None:
    rng = np.random.default_rng(7)
    stalls_ms = rng.integers(1, 5000, 40)
    played_ms = rng.integers(1000, 60_000, 40)
    partials = [
        rebuffering(pane=float(i % 8), hi=i + 1, stalls=1, stall_s=float(s) / 1000, played_s=float(p) / 1000)
        for i, (s, p) in enumerate(zip(stalls_ms, played_ms, strict=True))
    ]
    region = fed(spec, *partials).snapshot(NOW).regions[EU]
    want = int(stalls_ms.sum()) / int(stalls_ms.sum() + played_ms.sum())
    assert region.slos["rebuffering"].ratios[60.0] == want
    series = region.series[(c.SLI_REBUFFERING, c.KIND_RUM)]
    assert (series.stalls, series.stall_s, series.played_s) == (
        40, int(stalls_ms.sum()) / 1000, int(played_ms.sum()) / 1000
    )


@pytest.mark.parametrize(
    ("partial", "slo", "fires"),
    [
        pytest.param(rebuffering(stalls=5, stall_s=10.0, played_s=90.0), "rebuffering", True,
                     id="10 % rebuffering over 100 s watched burns 20x: the fast tier fires"),
        pytest.param(rebuffering(stalls=5, stall_s=1.0, played_s=9.0), "rebuffering", False,
                     id="the same ratio over 10 s watched is under the 20-event guard (seconds watched)"),
        pytest.param(outcomes(attempts=100, exits=40), "exits_before_start", True,
                     id="40 % exits before start burns 20x: the fast tier fires, as a ticket (max_severity)"),
        pytest.param(outcomes(attempts=100, errors=10, business=90), "errors", False,
                     id="10 % errors burn 10x, under the fast factor 14.4, whatever the business refusals"),
    ],
)
def test_tiers_fire_on_ratio_and_time_ratio_slos_like_on_errors(
    spec: Spec, partial: Partial, slo: str, fires: bool
) -> None:
    (fast, _slow) = fed(spec, partial).snapshot(NOW).regions[EU].slos[slo].tiers
    assert fast.firing is fires
    assert fast.severity == spec.slo(slo).severity_of(spec.tiers[0])
    if slo == "exits_before_start":
        assert fast.severity == c.SEVERITY_TICKET


@pytest.mark.parametrize(
    ("partials", "holds", "value"),
    [
        pytest.param([rebuffering(stalls=4, stall_s=6.0, played_s=94.0)], True, 0.06,
                     id="6 % rebuffering over the 10 s window is above the trigger's 5 %"),
        pytest.param([rebuffering(stalls=4, stall_s=4.0, played_s=96.0)], False, 0.04,
                     id="4 % rebuffering does not hold"),
        pytest.param([rebuffering(stalls=4, stall_s=0.54, played_s=8.46)], False, 0.06,
                     id="6 % over 9 s watched is under the trigger's 10 min_events (seconds watched)"),
    ],
)
def test_above_ratio_triggers_on_rebuffering(spec: Spec, partials: list[Partial], holds: bool, value: float) -> None:
    stage2 = fed(spec, *partials)
    stage2.advance(NOW)
    report = stage2.health_report(EU)
    assert report is not None
    figure = next(f for f in report.figures["failover"] if f.sli == c.SLI_REBUFFERING)
    assert figure.holds is holds
    assert figure.value == pytest.approx(value)


def test_live_latency_is_a_latency_slo_with_quantiles_and_threshold_counts(spec: Spec) -> None:
    values = np.random.default_rng(3).lognormal(math.log(2.0), 0.6, 2000)
    partial = make_partial(spec, values, pane_start=T0, sli=c.SLI_LIVE_LATENCY)
    region = fed(spec, partial).snapshot(NOW).regions[EU]
    series = region.series[(c.SLI_LIVE_LATENCY, c.KIND_RUM)]
    assert series.quantiles[60.0][0.95] == pytest.approx(np.quantile(values, 0.95), rel=RELATIVE_ACCURACY)
    slow = int((values > 5.0).sum())
    assert region.slos["live_latency-p95"].burn_rates[60.0] == pytest.approx(slow / 2000 / 0.05)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"sli": c.SLI_EXITS_BEFORE_START}, id="an exits_before_start partial (read from errors) is refused"),
        pytest.param({"sli": c.SLI_REBUFFERING, "stall_s": -1.0}, id="a negative stall time is refused"),
        pytest.param({"sli": c.SLI_REBUFFERING, "played_s": math.nan}, id="a NaN played time is refused"),
        pytest.param({"sli": c.SLI_ERRORS, "business": -3}, id="a negative business count is refused"),
    ],
)
def test_malformed_qoe_partials_are_rejected(spec: Spec, fields: dict[str, Any]) -> None:
    stage2 = Stage2(spec)
    base: dict[str, Any] = {"region": EU, "kind": c.KIND_RUM, "pane_start": T0, "pane_s": 1.0,
                            "source": "beacons/0", "lo": 0, "hi": 1}
    assert not stage2.apply(Partial(**{**base, **fields}))
    assert stage2.counters.rejected == 1


# -- the dimension -------------------------------------------------------------------


def test_dimension_values_are_series_of_their_own_and_the_slo_is_the_region_sum(spec: Spec) -> None:
    rng = np.random.default_rng(5)
    fast, slow = rng.lognormal(math.log(0.08), 0.3, 500), rng.lognormal(math.log(0.4), 0.3, 500)
    stage2 = fed(
        spec,
        _with_dim(make_partial(spec, fast, pane_start=T0, hi=1), "akamai"),
        _with_dim(make_partial(spec, slow, pane_start=T0, hi=1), "not-a-cdn"),
        rebuffering(stalls=1, stall_s=1.0, played_s=99.0, dim="fastly"),
        rebuffering(stalls=1, stall_s=3.0, played_s=97.0, dim=""),
        outcomes(attempts=10, errors=1, dim="akamai"),  # errors does not opt in: dim dropped
    )
    region = stage2.snapshot(NOW).regions[EU]
    assert sorted(region.by_dim) == [
        (c.SLI_ERRORS, c.KIND_RUM, ""),
        (c.SLI_REBUFFERING, c.KIND_RUM, "fastly"),
        (c.SLI_REBUFFERING, c.KIND_RUM, "other"),
        (c.SLI_TTFF, c.KIND_RUM, "akamai"),
        (c.SLI_TTFF, c.KIND_RUM, "other"),
    ]
    both = np.concatenate([fast, slow])
    ttff = region.series[(c.SLI_TTFF, c.KIND_RUM)]
    assert ttff.count == 1000
    assert ttff.quantiles[60.0][0.95] == pytest.approx(np.quantile(both, 0.95), rel=RELATIVE_ACCURACY)
    assert region.slos["ttff-p95"].burn_rates[60.0] == pytest.approx(int((both > 0.2).sum()) / 1000 / 0.05)
    assert region.slos["rebuffering"].ratios[60.0] == 4.0 / 200.0


def _with_dim(partial: Partial, dim: str) -> Partial:
    return msgspec.structs.replace(partial, dim=dim)


def scrape(spec: Spec, stage2: Stage2) -> dict[str, list[Sample]]:
    registry = CollectorRegistry()
    registry.register(EngineCollector(lambda: stage2.snapshot(NOW), spec))
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def test_a_cardinality_attack_on_the_dimension_stays_within_regions_x_values_x_slis(spec: Spec) -> None:
    """10,000 distinct cdn values in both regions: /metrics keeps the allow-list plus other."""
    assert spec.dimension is not None
    stage2 = Stage2(spec)
    hi = 0
    for region in (EU, US):
        for i in range(10_000):
            hi += 1
            dim = spec.dimension.values[i % 3] if i % 2 else f"evil-{i}"
            ttff = _with_dim(make_partial(spec, [0.1], pane_start=T0, region=region, hi=hi), dim)
            stage2.apply(ttff)
            stage2.apply(rebuffering(hi=hi, region=region, stalls=1, stall_s=0.5, played_s=9.5, dim=dim))
            stage2.apply(outcomes(hi=hi, region=region, attempts=2, errors=0, dim=dim))
    samples = scrape(spec, stage2)
    values = len(spec.dimension.labels)  # 3 allow-listed + other
    assert len(samples[c.METRIC_LATENCY_COUNT]) == 2 * values  # ttff opts in; regions x values
    assert len(samples[c.METRIC_REBUFFER_SECONDS]) == 2 * values
    assert len(samples[c.METRIC_ATTEMPTS]) == 2  # errors does not opt in
    assert {s.labels["cdn"] for s in samples[c.METRIC_PLAYED_SECONDS]} == set(spec.dimension.labels)
    assert all("cdn" not in s.labels for s in samples[c.METRIC_ATTEMPTS])
    snapshot = stage2.snapshot(NOW)
    assert sum(len(snapshot.regions[r].by_dim) for r in (EU, US)) == 2 * (values + values + 1)
    played = {s.labels["cdn"]: s.value for s in samples[c.METRIC_PLAYED_SECONDS] if s.labels["region"] == EU}
    assert played == {"akamai": 1667 * 9.5, "fastly": 1667 * 9.5, "cloudfront": 1666 * 9.5, "other": 5000 * 9.5}


def test_metrics_expose_the_qoe_counters_and_the_exact_sli_ratio(spec: Spec) -> None:
    stage2 = fed(
        spec,
        outcomes(attempts=1000, errors=10, exits=25, warnings=7, business=40),
        rebuffering(stalls=3, stall_s=3.0, played_s=597.0, dim="akamai"),
    )
    samples = scrape(spec, stage2)

    def one(name: str, **labels: str) -> float:
        (sample,) = [s for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items())]
        return sample.value

    for name, value in [
        (c.METRIC_ATTEMPTS, 1000), (c.METRIC_ERRORS, 10), (c.METRIC_EXITS_BEFORE_START, 25),
        (c.METRIC_WARNINGS, 7), (c.METRIC_BUSINESS_ERRORS, 40),
    ]:
        assert one(name, region=EU, kind=c.KIND_RUM) == value
    assert one(c.METRIC_REBUFFER_SECONDS, region=EU, kind=c.KIND_RUM, cdn="akamai") == 3.0
    assert one(c.METRIC_PLAYED_SECONDS, region=EU, kind=c.KIND_RUM, cdn="akamai") == 597.0
    assert one(c.METRIC_REBUFFER_EVENTS, region=EU, kind=c.KIND_RUM, cdn="akamai") == 3
    assert one(c.METRIC_SLI_RATIO, region=EU, slo="rebuffering", window="1m") == 0.005
    assert one(c.METRIC_SLI_RATIO, region=EU, slo="exits_before_start", window="1h") == 0.025
    assert one(c.METRIC_SLI_RATIO, region=EU, slo="errors", window="10s") == 0.01
    assert {s.labels["slo"] for s in samples[c.METRIC_SLI_RATIO]} == {"errors", "exits_before_start", "rebuffering"}
    assert one(c.METRIC_BURN_RATE, region=EU, slo="rebuffering", window="1m") == pytest.approx(1.0)
    assert one(c.METRIC_BUDGET_REMAINING, region=EU, slo="exits_before_start") == pytest.approx(1 - 25 / 20)


# -- state: old and new ---------------------------------------------------------------

# A region state exported before issue 16 (magic S2R1, series keyed by (sli,
# kind), flushed keys without a dim) by slo/stage2.py as of 405ac37, for
# LEGACY_SPEC: a ttff partial of 0.1, 0.25 and 0.4 s and an errors partial of
# 3 fatal errors in 40 attempts, both in the pane at T0 from beacons/0 offsets
# 0 < o <= 7, then advance(T0 + 5).
LEGACY_SPEC = {
    "apiVersion": "streamslo/v1", "name": "legacy", "period": "1d", "regions": ["eu-west-1"],
    "stream": {"quantile_windows": ["1m"]},
    "alerting": {"tiers": [{"name": "fast", "long": "1h", "short": "5m", "factor": 14.4, "severity": "page"}]},
    "slos": [{"sli": "ttff", "objectives": [{"quantile": 0.95, "threshold_ms": 200}]},
             {"sli": "errors", "objectives": [{"max_ratio": 0.01}]}],
}
LEGACY_STATE = base64.b64decode("""
UzJSMXgB7Vu/S8NAFL5rBhcXxcmpYzcd3NtOpejmIg6CSrtpIa0gOlhE3IT0B5TWURFEEAQXtw7JVKij6GS3jvkP4iV3uejQ
oZRrzpd3wyWkIe/e972893EvbTdbDyXTrJjVO/PkqEsGRAwrY5BB/quYzuVIdNLuDDeauUtq7xL2u5phu2qeq+9TQ4/dC75G
+EfpsSc8Bn+0OsPVYjpP7ZG6N0eTCHdSO5qsBJcBDAEZWvBTJGcO/ZwXDlFoga9FAlL0MwDCVY4Dq/20f9un9ut/rP0O/eYB
gzNUBCTFWG44xfBwiChWnu4EhGgnAEJ9eQnxZmWGLL9k/DIT15hhU0gGaFxrR7uqEZAUw0uvHDr0K6IY038QE/NL/yIEleNu
te5rtXI56BcYg+yY2+0RQmnK8Ae7MLlz4NDroHHw62b+AJzni0C4BT/OztdufNZst9f1x5vwGH62Dj3+DD1Wnhw4u/ElvUaT
2Kdb25uUnq88F0ZnVxOj+8bzvAJbLp0qICfdTT+WnvZEi8cx3jHFTYUq3owI6IyA7A0kp1jqTAektbHQSpoq4fTBV19x+ylD
KznyT0AOXubG7WfY0XSMRZS6nAycEQG5+4k6EWowMIpRr/nkwtVvkmLUTfwtjm87T5X9sFXO9As3gXPSEUAdS4jUL0kPhln9
11f/SYrh1m9Onjr/dNd/EcW4DxLEwvT6hVOsr/6zGq3Hg9L+YeW4ura+8Oc/nPzTC+Z39JmGvFSv/wAomZIn
""")


def test_a_region_state_written_before_issue_16_still_loads_with_dim_empty() -> None:
    spec = parse_spec(LEGACY_SPEC)[0]
    stage2 = Stage2(spec)
    stage2.import_region(EU, LEGACY_STATE)
    region = stage2.snapshot(NOW).regions[EU]
    assert sorted(region.by_dim) == [(c.SLI_ERRORS, c.KIND_RUM, ""), (c.SLI_TTFF, c.KIND_RUM, "")]
    ttff, errors = region.series[(c.SLI_TTFF, c.KIND_RUM)], region.series[(c.SLI_ERRORS, c.KIND_RUM)]
    assert (ttff.count, ttff.sum_s) == (3, 0.75)
    assert ttff.quantiles[60.0][0.5] == pytest.approx(0.25, rel=RELATIVE_ACCURACY)
    assert (errors.attempts, errors.errors, errors.exits, errors.business) == (40, 3, 0, 0)
    assert region.slos["errors"].ratios == {60.0: 3 / 40, 86400.0: 3 / 40}
    # the watermark came along: the same partials replayed are duplicates
    replay = outcomes(hi=7, attempts=40, errors=3)
    assert not stage2.apply(msgspec.structs.replace(replay, pane_s=2.0))
    assert stage2.counters.duplicate == 1
    # and the new counters start from zero on the old windows
    assert stage2.apply(outcomes(pane=2.0, hi=8, attempts=10, exits=4, business=5))
    after = stage2.snapshot(NOW).regions[EU].series[(c.SLI_ERRORS, c.KIND_RUM)]
    assert (after.attempts, after.exits, after.business, after.window_events[60.0]) == (50, 4, 5, 50)


def test_an_old_state_loaded_under_a_spec_that_now_declares_a_dimension_lands_in_other() -> None:
    dimension = {"name": "cdn", "values": ["akamai", "fastly"], "slis": ["ttff"]}
    spec = parse_spec({**LEGACY_SPEC, "dimension": dimension})[0]
    stage2 = Stage2(spec)
    stage2.import_region(EU, LEGACY_STATE)
    region = stage2.snapshot(NOW).regions[EU]
    assert region.by_dim[(c.SLI_TTFF, c.KIND_RUM, "other")].count == 3
    assert region.series[(c.SLI_TTFF, c.KIND_RUM)].count == 3
    assert (c.SLI_ERRORS, c.KIND_RUM, "") in region.by_dim  # errors does not opt in


def test_a_state_whose_dimension_values_collapse_under_the_spec_does_not_fit(spec: Spec) -> None:
    stage2 = fed(
        spec,
        _with_dim(make_partial(spec, [0.1], pane_start=T0, hi=1), "akamai"),
        _with_dim(make_partial(spec, [0.2], pane_start=T0, hi=1), "fastly"),
    )
    assert spec.dimension is not None
    narrower = replace(spec, dimension=replace(spec.dimension, values=("cloudfront",)))
    with pytest.raises(ValueError, match="dimension"):
        Stage2(narrower).import_region(EU, stage2.export_region(EU))


def test_export_import_round_trip_keeps_every_qoe_counter_and_dimension(spec: Spec) -> None:
    stage2 = fed(
        spec,
        outcomes(attempts=100, errors=2, exits=3, warnings=4, business=5),
        rebuffering(stalls=2, stall_s=1.25, played_s=98.75, dim="fastly"),
        _with_dim(make_partial(spec, [0.1, 0.3], pane_start=T0, hi=1), "cloudfront"),
    )
    copy = Stage2(spec)
    copy.import_region(EU, stage2.export_region(EU))
    assert copy.snapshot(NOW).regions[EU] == stage2.snapshot(NOW).regions[EU]
    assert not copy.apply(rebuffering(stalls=2, stall_s=1.25, played_s=98.75, dim="fastly"))


# -- memory -------------------------------------------------------------------------


def _fill_everything(spec: Spec, sli: str) -> Series:
    """One series with every pane of every window holding a partial (per-pane sketches included)."""
    series = Series(spec, sli, c.KIND_RUM, "akamai")
    rng = np.random.default_rng(11)
    now = T0 + max(series.windows)
    series.advance(now)
    for window in series.windows.values():
        for idx in range(window.n):
            t = now - idx * window.pane_s
            if sli == c.SLI_ERRORS:
                partial = outcomes(pane=t - T0, attempts=500, errors=3, exits=7, warnings=11, business=2)
            elif sli == c.SLI_REBUFFERING:
                partial = rebuffering(pane=t - T0, stalls=40, stall_s=57.123, played_s=86_000.5)
            else:  # adversarial latencies: every pane spans 1 ms .. 60 s
                values = np.exp(rng.uniform(np.log(0.001), np.log(60.0), 200))
                partial = make_partial(spec, values, pane_start=t, sli=sli)
            series.apply(partial)
    return series


@pytest.mark.parametrize(
    "sli",
    [c.SLI_TTFF, c.SLI_ERRORS, c.SLI_REBUFFERING],
    ids=["a latency series (ttff, live_latency) with every pane full fits in 1.5 MB",
         "the errors series (every playback outcome) fits in 1.5 MB",
         "the rebuffering series fits in 1.5 MB"],
)
def test_memory_of_one_series_per_sli_kind_on_the_default_spec(sli: str) -> None:
    """The stage-2 state of one (region x dimension value x SLI x kind), traced allocations included.

    A first fill warms the caches (imports, numpy dispatch) so the traced
    bytes are the second series' own.
    """
    spec = load_spec()[0]
    _fill_everything(spec, sli)
    tracemalloc.start()
    try:
        series = _fill_everything(spec, sli)
        traced, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    panes = sum(w.n for w in series.windows.values())
    print(f"\n{sli} series: nbytes {series.nbytes}, traced {traced} bytes, {panes} panes")
    assert series.nbytes <= traced <= MEMORY_LIMIT
