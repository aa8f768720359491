"""Stage 2: idempotent apply, quantiles vs numpy, burn rates, tiers, triggers, state round trip."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slo import conventions as c
from slo.model import Spec
from slo.partial import Partial
from slo.rolling import pane_width
from slo.spec import load_spec
from slo.stage2 import Stage2
from tests.test_windows import make_partial

T0 = 1_764_000_000.0  # a pane-aligned epoch second
EU, US = "eu-west-1", "us-east-1"


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec()[0]


def latency(spec: Spec, pane: float, source: str = "beacons/0", hi: int = 1, lo: int = 0, **kw: object) -> Partial:
    values = kw.pop("values", [0.1, 0.25])
    return make_partial(spec, values, pane_start=T0 + pane, source=source, lo=lo, hi=hi, **kw)  # type: ignore[arg-type]


def errors(spec: Spec, pane: float, attempts: int, errs: int, **kw: object) -> Partial:
    return make_partial(spec, [], pane_start=T0 + pane, sli=c.SLI_ERRORS, attempts=attempts, errors=errs, **kw)  # type: ignore[arg-type]


def flush(spec: Spec, source: str, lo: int, hi: int, region: str = EU) -> list[Partial]:
    """One stage-1 flush: same (source, lo, hi) across SLIs, kinds and two panes."""
    return [
        latency(spec, 0.0, source, hi, lo, region=region),
        latency(spec, 2.0, source, hi, lo, region=region),
        latency(spec, 0.0, source, hi, lo, region=region, kind=c.KIND_PROBE),
        latency(spec, 0.0, source, hi, lo, region=region, sli=c.SLI_INTERACTION),
        errors(spec, 0.0, 10, 1, source=source, lo=lo, hi=hi, region=region),
    ]


def scenario(spec: Spec, name: str) -> list[Partial]:
    a1 = flush(spec, "beacons/0", 0, 100)
    a2 = flush(spec, "beacons/0", 100, 200)
    b1 = flush(spec, "beacons/1", 0, 50)
    return {
        "twice": [a1[0], a1[0]],
        "whole flush": a1,
        "flush replayed": a1 + a1,
        "old flush after newer": a1 + a2 + a1 + a2,
        "two sources": a1 + b1 + b1,
        "two regions": a1 + flush(spec, "beacons/0", 0, 100, region=US),
        "replay mid flush": a1[:2] + a1 + a2,
    }[name]


@pytest.mark.parametrize(
    ("name", "applied", "skipped"),
    [
        ("twice", 1, 1),
        ("whole flush", 5, 0),
        ("flush replayed", 5, 5),
        ("old flush after newer", 10, 10),
        ("two sources", 10, 5),
        ("two regions", 10, 0),
        ("replay mid flush", 10, 2),
    ],
    ids=[
        "the same partial twice is counted once",
        "every partial of one flush (same source, lo, hi; other sli, kind, pane) is applied",
        "a replayed flush is skipped as a whole",
        "an older flush replayed after a newer one is skipped",
        "partials from two sources are both applied and each replay skipped",
        "the same offsets in two regions are independent",
        "a crash mid flush then a full replay applies only the missing partials",
    ],
)
def test_apply_is_idempotent(spec: Spec, name: str, applied: int, skipped: int) -> None:
    stage2 = Stage2(spec)
    partials = scenario(spec, name)
    results = [stage2.apply(p) for p in partials]
    assert results.count(True) == applied
    assert stage2.counters.duplicate == skipped
    # totals equal the sum over the distinct partials
    distinct = {(p.region, p.source, p.hi, p.sli, p.kind, p.pane_start): p for p in partials}
    snap = stage2.snapshot(T0 + 10)
    for region in snap.regions.values():
        for (sli, kind), series in region.series.items():
            mine = [p for p in distinct.values() if (p.region, p.sli, p.kind) == (region.region, sli, kind)]
            assert series.count == sum(p.count for p in mine)
            assert series.attempts == sum(p.attempts for p in mine)


@pytest.mark.parametrize(
    "partial_kw",
    [{"sli": "bogus"}, {"kind": "bot"}, {"values": [0.1], "region": EU, "lo": 5, "hi": 4}],
    ids=["an unknown SLI is rejected", "an unknown kind is rejected", "an inverted offset range is rejected"],
)
def test_malformed_partials_are_rejected_and_counted(spec: Spec, partial_kw: dict[str, Any]) -> None:
    stage2 = Stage2(spec)
    assert not stage2.apply(latency(spec, 0.0, **partial_kw))
    assert stage2.counters.rejected == 1


def test_a_partial_with_the_wrong_bucket_count_is_rejected(spec: Spec) -> None:
    stage2 = Stage2(spec)
    bad = latency(spec, 0.0)
    assert not stage2.apply(Partial(**{**{f: getattr(bad, f) for f in bad.__struct_fields__}, "le_counts": (1, 2)}))
    assert stage2.counters.rejected == 1


def _corpus(spec: Spec) -> tuple[Stage2, dict[str, list[tuple[float, np.ndarray]]], float]:
    """Three regions with different lognormal latencies, 2 sources, panes over 400 s."""
    rng = np.random.default_rng(42)
    stage2 = Stage2(spec)
    medians = {"eu-west-1": 0.08, "us-east-1": 0.15, "ap-southeast-1": 0.3}
    sent: dict[str, list[tuple[float, np.ndarray]]] = {r: [] for r in medians}
    offsets = {"beacons/0": 0, "beacons/1": 0}
    for step in range(200):
        pane = step * spec.pane_s
        for source in offsets:
            lo, offsets[source] = offsets[source], offsets[source] + 10
            for region, median in medians.items():
                values = rng.lognormal(math.log(median), 0.6, size=int(rng.integers(20, 120)))
                sent[region].append((T0 + pane, values))
                assert stage2.apply(latency(spec, pane, source, offsets[source], lo, region=region, values=values))
        stage2.advance(T0 + pane + 1.0)
    return stage2, sent, T0 + 200 * spec.pane_s - 1.0


def test_quantiles_per_window_are_within_one_percent_of_numpy(spec: Spec) -> None:
    stage2, sent, now = _corpus(spec)
    snap = stage2.snapshot(now)
    checked = 0
    for region, panes in sent.items():
        series = snap.regions[region].series[(c.SLI_TTFF, c.KIND_RUM)]
        assert set(series.quantiles) == set(spec.quantile_windows_s)
        for window_s in spec.quantile_windows_s:
            width = pane_width(window_s, spec.pane_s)
            start = (math.floor(now / width) - round(window_s / width) + 1) * width
            values = np.concatenate([v for t, v in panes if t >= start])
            assert series.window_events[window_s] == values.size
            for q in c.EXPORTED_QUANTILES:
                exact = float(np.percentile(values, q * 100))  # numpy's default definition
                got = series.quantiles[window_s][q]
                assert abs(got - exact) <= 0.01 * exact * (1 + 1e-9), (region, window_s, q)
                checked += 1
        everything = np.concatenate([v for _, v in panes])
        assert series.count == everything.size
        assert math.isclose(series.sum_s, float(everything.sum()), rel_tol=1e-9)
        edges = np.asarray(spec.histogram_buckets_s)
        assert series.le_counts == tuple(int((everything <= e).sum()) for e in edges)
    assert checked == 3 * 3 * 4


def test_burn_rates_and_budget_remaining_per_slo_and_window(spec: Spec) -> None:
    stage2 = Stage2(spec)
    # 1000 rum first frames, 30 above 200 ms and 5 above 300 ms; 1000 attempts with 30 errors
    values = np.concatenate([np.full(965, 0.1), np.full(25, 0.25), np.full(10, 0.35)])
    stage2.apply(latency(spec, 0.0, values=values))
    stage2.apply(errors(spec, 0.0, 1000, 30))
    stage2.apply(latency(spec, 0.0, values=np.full(500, 2.0), kind=c.KIND_PROBE))  # not evaluated
    slos = stage2.snapshot(T0 + 30).regions[EU].slos
    expected = {"ttff-p90": (35 / 1000) / 0.1, "ttff-p95": (35 / 1000) / 0.05, "ttff-p99": (10 / 1000) / 0.01, "errors": 3.0}
    for name, burn in expected.items():
        assert set(slos[name].burn_rates) == set(spec.alert_windows_s)
        for window_s, rate in slos[name].burn_rates.items():
            assert math.isclose(rate, burn, rel_tol=1e-12), (name, window_s)
        assert math.isclose(slos[name].budget_remaining, 1 - burn, rel_tol=1e-12)
    assert slos["interaction_rtt-p95"].burn_rates[300.0] == 0.0
    assert slos["interaction_rtt-p95"].budget_remaining == 1.0


@pytest.mark.parametrize(
    ("attempts", "errs", "fast_firing"),
    [(200, 200, True), (50, 50, False), (200, 1, False)],
    ids=[
        "an outage with 200 attempts fires the fast tier of the error SLO",
        "the same outage on 50 attempts is held back by the low-traffic guard",
        "a 0.5 % error ratio does not burn at 14.4x",
    ],
)
def test_tiers_in_the_snapshot(spec: Spec, attempts: int, errs: int, fast_firing: bool) -> None:
    stage2 = Stage2(spec)
    stage2.apply(errors(spec, 0.0, attempts, errs))
    tiers = {t.tier: t for t in stage2.snapshot(T0 + 30).regions[EU].slos["errors"].tiers}
    assert tiers["fast"].firing is fast_firing
    assert tiers["fast"].severity == c.SEVERITY_PAGE


def test_scale_out_trigger_needs_two_minutes_of_slow_p95(spec: Spec) -> None:
    stage2 = Stage2(spec)
    states = []
    for step in range(100):  # 200 s of 30 events per 2 s pane, all at 400 ms
        pane = step * spec.pane_s
        stage2.apply(latency(spec, pane, hi=step + 1, lo=step, values=np.full(30, 0.4)))
        snap = stage2.snapshot(T0 + pane + 1.0)
        states.append((pane + 1.0, snap.regions[EU].triggers["scale_out"]))
    assert all(s.condition for _, s in states)
    first_active = next(t for t, s in states if s.active)
    assert first_active == 121.0  # condition since t=1 s, for: 2m
    assert states[-1][1].active and states[-1][1].since == T0 + 1.0


def test_late_partials_are_counted_and_still_reach_totals(spec: Spec) -> None:
    stage2 = Stage2(spec)
    stage2.apply(latency(spec, 600.0, hi=1))
    assert stage2.apply(latency(spec, 0.0, hi=2, values=[0.1, 0.1, 0.1]))  # 10 min old
    snap = stage2.snapshot(T0 + 601)
    series = snap.regions[EU].series[(c.SLI_TTFF, c.KIND_RUM)]
    assert stage2.counters.late == 1 and stage2.counters.late_events == 3
    assert series.count == 5
    assert series.window_events[60.0] == 2 and series.window_events[3600.0] == 5


def test_export_import_round_trip_preserves_everything(spec: Spec) -> None:
    stage2, _, now = _corpus(spec)
    stage2.apply(errors(spec, 390.0, 100, 3, hi=10**6))
    for region in stage2.regions():
        stage2.apply(latency(spec, 398.0, "beacons/9", 7, 6, region=region, values=np.full(25, 0.5)))
    before = stage2.snapshot(now)
    restored = Stage2(spec)
    sizes = []
    for region in stage2.regions():
        data = stage2.export_region(region)
        sizes.append(len(data))
        restored.import_region(region, data)
    print(f"\nexported region state: {sizes} bytes")
    after = restored.snapshot(now)
    assert after.regions == before.regions
    # watermarks travelled: replays are still skipped after the restore
    assert not restored.apply(latency(spec, 398.0, "beacons/9", 7, 6, region=EU, values=np.full(25, 0.5)))
    assert not restored.apply(errors(spec, 390.0, 100, 3, hi=10**6))
    # and both evolve identically from here
    assert stage2.snapshot(now + 100).regions == restored.snapshot(now + 100).regions


def test_import_rejects_garbage_and_drop_region_forgets(spec: Spec) -> None:
    stage2 = Stage2(spec)
    stage2.apply(latency(spec, 0.0))
    with pytest.raises(ValueError):
        stage2.import_region(EU, b"not a state")
    with pytest.raises(ValueError):
        stage2.import_region(EU, stage2.export_region(EU)[:-5])
    stage2.drop_region(EU)
    assert stage2.regions() == []
    assert stage2.snapshot(T0 + 5).regions == {}


def test_freshness_is_now_minus_newest_event_time(spec: Spec) -> None:
    stage2 = Stage2(spec)
    stage2.apply(latency(spec, 10.0))  # max_event_time = pane start + 1 s
    assert stage2.snapshot(T0 + 14.0).regions[EU].freshness_s == pytest.approx(3.0)


@settings(max_examples=40, deadline=None)
@given(
    flush_sizes=st.lists(st.tuples(st.sampled_from(["beacons/0", "beacons/1"]), st.integers(1, 4)), min_size=1, max_size=12),
    rewinds=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), max_size=4),
)
def test_any_at_least_once_redelivery_counts_every_event_once(
    flush_sizes: list[tuple[str, int]], rewinds: list[tuple[float, float]]
) -> None:
    """Kafka keeps order per partition; a restart re-delivers from an earlier offset. Totals stay exact."""
    spec = load_spec()[0]
    stream: list[Partial] = []
    offsets = {"beacons/0": 0, "beacons/1": 0}
    for n, (source, parts) in enumerate(flush_sizes):
        lo, offsets[source] = offsets[source], offsets[source] + 10
        for pane in range(parts):  # one flush: same (source, lo, hi), different panes
            stream.append(latency(spec, 2.0 * pane, source, offsets[source], lo, values=[0.1] * (n + 1)))
    delivered = list(stream)
    for at, back in rewinds:  # crash at `at`, resume from an earlier position
        i = int(at * len(delivered))
        j = int(back * i)
        delivered = delivered[:i] + delivered[j:]
    stage2 = Stage2(spec)
    applied = sum(stage2.apply(p) for p in delivered)
    assert applied == len(stream)
    assert stage2.counters.duplicate == len(delivered) - len(stream)
    series = stage2.snapshot(T0 + 10).regions[EU].series[(c.SLI_TTFF, c.KIND_RUM)]
    assert series.count == sum(p.count for p in stream)


@pytest.mark.parametrize(
    ("window_s", "want_errors", "want_attempts"),
    [(60.0, 1, 100), (300.0, 21, 300), (3600.0, 21, 300)],
    ids=[
        "the 1m trigger window holds only the last minute's errors",
        "the 5m window adds the older panes' errors",
        "the 1h window holds everything",
    ],
)
def test_errors_and_error_ratio_per_window(spec: Spec, window_s: float, want_errors: int, want_attempts: int) -> None:
    stage2 = Stage2(spec)
    for hi, (pane, errs) in enumerate([(0.0, 15), (100.0, 5), (200.0, 1)], start=1):
        stage2.apply(errors(spec, pane, 100, errs, hi=hi, lo=hi - 1))
    stage2.apply(latency(spec, 200.0, hi=4, lo=3))
    region = stage2.snapshot(T0 + 201.0).regions[EU]
    series = region.series[(c.SLI_ERRORS, c.KIND_RUM)]
    assert series.window_errors[window_s] == want_errors
    assert series.window_events[window_s] == want_attempts
    assert series.error_ratio(window_s) == pytest.approx(want_errors / want_attempts)
    # latency series have no error ratio; a window without attempts has none either
    assert region.series[(c.SLI_TTFF, c.KIND_RUM)].error_ratio(window_s) is None
    assert stage2.snapshot(T0 + 4000.0).regions[EU].series[(c.SLI_ERRORS, c.KIND_RUM)].error_ratio(60.0) is None


def test_freshness_is_per_region_when_one_stage1_cut_holds_several_regions(spec: Spec) -> None:
    """One stage-1 flush with a fresh and a stale region: each region's freshness is its own."""
    from slo.beacon import Beacon, Event
    from slo.stage1 import Stage1

    stage1 = Stage1(spec)
    newest = {EU: T0 + 99.5, US: T0 + 90.0}  # us-east-1's newest event is 9.5 s older
    for offset, (region, t) in enumerate(newest.items()):
        event = Event(c.EVENT_FIRST_FRAME, t, 120.0)
        stage1.add(Beacon(f"s{offset}", 1, region, c.KIND_RUM, T0 + 99.8, T0 + 99.8, [event]), "beacons/0", offset)
    stage2 = Stage2(spec)
    for partial in stage1.flush("beacons/0"):
        assert stage2.apply(partial)
    regions = stage2.snapshot(T0 + 100.0).regions
    assert regions[EU].freshness_s == pytest.approx(0.5)
    assert regions[US].freshness_s == pytest.approx(10.0)
