"""Rolling windows: pane widths, exact sliding at edges, lateness, memory per series."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slo import conventions as c
from slo.model import Spec
from slo.partial import Partial
from slo.rolling import COUNT, FIRST_EDGE, Window, pane_width
from slo.sketch import LogSketch
from slo.spec import load_spec
from slo.windows import Series

MEMORY_LIMIT = 1.5 * 1024 * 1024


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec()[0]


def make_partial(
    spec: Spec,
    values: np.ndarray | list[float],
    *,
    pane_start: float,
    region: str = "eu-west-1",
    sli: str = c.SLI_TTFF,
    kind: str = c.KIND_RUM,
    source: str = "beacons/0",
    lo: int = 0,
    hi: int = 1,
    attempts: int = 0,
    errors: int = 0,
) -> Partial:
    """A partial exactly as stage 1 builds it from raw ``values`` (seconds)."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    if sli == c.SLI_ERRORS:
        return Partial(
            region=region, sli=sli, kind=kind, pane_start=pane_start, pane_s=spec.pane_s,
            source=source, lo=lo, hi=hi, attempts=attempts, errors=errors,
            max_event_time=pane_start + spec.pane_s / 2,
        )
    sketch = LogSketch(0.01)
    sketch.add_batch(v)
    edges = np.asarray(spec.histogram_buckets_s)
    le = np.searchsorted(v, edges, side="right")
    return Partial(
        region=region, sli=sli, kind=kind, pane_start=pane_start, pane_s=spec.pane_s,
        source=source, lo=lo, hi=hi, count=int(v.size), sum_s=float(v.sum()),
        min_s=float(v[0]) if v.size else 0.0, max_s=float(v[-1]) if v.size else 0.0,
        le_counts=tuple(int(x) for x in le), sketch=sketch.to_bytes() if v.size else b"",
        max_event_time=pane_start + spec.pane_s / 2,
    )


def one(n: int = 1, width: int = 1) -> np.ndarray:
    fields = np.zeros(width, dtype=np.int64)
    fields[COUNT] = n
    return fields


@pytest.mark.parametrize(
    ("window_s", "base", "expected"),
    [(60, 2, 2.0), (300, 2, 4.0), (3600, 2, 60.0), (259200, 2, 4320.0), (2592000, 2, 43200.0), (90, 7, 7.0)],
    ids=[
        "a one minute window uses the base two second pane",
        "a five minute window uses four second panes (75 of them)",
        "an hour uses one minute panes",
        "three days use 72 minute panes",
        "thirty days use twelve hour panes",
        "a window that is no multiple of the base pane falls back to the base pane",
    ],
)
def test_pane_width(window_s: float, base: float, expected: float) -> None:
    assert pane_width(window_s, base) == expected


@pytest.mark.parametrize(
    ("event_times", "now", "expected"),
    [
        ([0.0], 59.9, 1),
        ([0.0], 60.0, 0),
        ([1.9], 60.0, 0),
        ([2.0], 61.9, 1),
        ([float(t) for t in range(0, 60, 2)], 59.0, 30),
        ([float(t) for t in range(0, 60, 2)], 89.0, 15),
        ([float(t) for t in range(0, 60, 2)], 1e6, 0),
    ],
    ids=[
        "an event in the oldest pane still counts 59.9 s later",
        "it expires exactly one window after its pane started",
        "an event late in a pane expires with its pane",
        "the next pane stays until its own end",
        "one event in each of 30 panes sums exactly",
        "half the panes have left after 30 more seconds",
        "a jump far ahead empties the window",
    ],
)
def test_window_slides_exactly_at_pane_edges(event_times: list[float], now: float, expected: int) -> None:
    window = Window(60.0, 2.0, 1, with_sketch=False)
    for t in event_times:
        assert window.add(t, one(), 0.0, 0.0, 0.0, None)
    window.advance(now)
    assert window.count == expected


def test_running_sums_and_sketch_equal_a_recount_of_the_window() -> None:
    """Random partials and advances: running sums, min/max and quantiles equal a brute-force recount."""
    rng = np.random.default_rng(7)
    window = Window(300.0, 4.0, FIRST_EDGE, with_sketch=True)
    kept: list[tuple[float, np.ndarray]] = []
    now = 0.0
    for _ in range(400):
        now += float(rng.uniform(0, 6))
        t = now - float(rng.uniform(0, 30))
        values = rng.lognormal(-2.0, 0.5, size=int(rng.integers(1, 40)))
        sketch = LogSketch(0.01)
        sketch.add_batch(values)
        fields = one(values.size, FIRST_EDGE)
        if window.add(t, fields, float(values.sum()), float(values.min()), float(values.max()), sketch):
            kept.append((t, values))
        window.advance(now)
        assert window.head is not None
        start = (window.head - window.n + 1) * window.pane_s
        live = [v for ts, v in kept if ts >= start - 1e-9]
        expected = np.concatenate(live) if live else np.zeros(0)
        assert window.count == expected.size
        if expected.size:
            assert math.isclose(window.sum_s, float(expected.sum()), rel_tol=1e-9)
            assert window.min_s == float(expected.min())
            assert window.max_s == float(expected.max())
            reference = LogSketch(0.01)
            reference.add_batch(expected)
            assert window.quantiles([0.5, 0.99]) == reference.quantiles([0.5, 0.99])


@pytest.mark.parametrize(
    ("age_s", "windows_taking_it"),
    [(10.0, 9), (200.0, 8), (4000.0, 5), (400000.0, 1), (3e6, 0)],
    ids=[
        "a partial 10 s old is applied to every window",
        "a partial 200 s old misses the 1m window only and is late",
        "a partial over an hour old misses the 1m, 5m, 30m and 1h windows",
        "a partial older than three days reaches only the 30 day period window",
        "a partial older than the period reaches no window",
    ],
)
def test_late_partials_are_counted_and_kept_out_of_windows_they_left(
    spec: Spec, age_s: float, windows_taking_it: int
) -> None:
    series = Series(spec, c.SLI_TTFF, c.KIND_RUM)
    now = 10_000_000.0
    series.advance(now)
    pane = math.floor((now - age_s) / spec.pane_s) * spec.pane_s
    on_time = series.apply(make_partial(spec, [0.1, 0.3], pane_start=pane))
    assert on_time is (windows_taking_it == len(series.windows))
    assert sum(w.count == 2 for w in series.windows.values()) == windows_taking_it
    # cumulative totals (Prometheus counters) always take it, late or not
    assert series.count == 2


def test_min_and_max_come_from_live_panes_only() -> None:
    window = Window(60.0, 2.0, 1, with_sketch=False)
    window.add(0.0, one(), 0.9, 0.9, 0.9, None)
    window.add(30.0, one(), 0.1, 0.1, 0.1, None)
    assert (window.min_s, window.max_s) == (0.1, 0.9)
    window.advance(61.0)
    assert (window.min_s, window.max_s) == (0.1, 0.1)
    window.advance(200.0)
    assert (window.min_s, window.max_s) == (None, None)


def _fill(series: Series, rng: np.random.Generator, wide: bool, per_pane: int = 200) -> None:
    """Put a realistic partial (``per_pane`` latencies) into every pane of every window."""
    for window in series.windows.values():
        for idx in range(window.n):
            if wide:  # adversarial: every pane spans 1 ms .. 60 s
                values = np.exp(rng.uniform(np.log(0.001), np.log(60.0), size=per_pane))
            else:  # lognormal around 120 ms with 2 % slow outliers up to ~10 s
                outliers = max(1, per_pane // 50)
                values = np.concatenate(
                    [rng.lognormal(np.log(0.12), 0.5, per_pane - outliers), rng.uniform(1.0, 10.0, outliers)]
                )
            sketch = LogSketch(0.01)
            sketch.add_batch(values)
            fields = one(values.size, series.windows[60.0].counts.shape[1])
            t = idx * window.pane_s
            assert window.add(t, fields, float(values.sum()), float(values.min()), float(values.max()), sketch)


@pytest.mark.parametrize(
    "wide",
    [False, True],
    ids=["realistic latencies in every pane fit in 1.5 MB", "adversarial 1 ms to 60 s spread in every pane fits in 1.5 MB"],
)
def test_memory_of_one_series_with_every_pane_full(spec: Spec, wide: bool) -> None:
    series = Series(spec, c.SLI_TTFF, c.KIND_RUM)
    _fill(series, np.random.default_rng(1), wide)
    panes = sum(w.n for w in series.windows.values())
    sketched = sum(1 for w in series.windows.values() for s in (w.sketches or []) if s is not None)
    print(f"\nseries memory ({'wide' if wide else 'realistic'}): {series.nbytes} bytes, "
          f"{panes} panes, {sketched} pane sketches")
    assert sketched == sum(w.n for w in series.windows.values() if w.sketches is not None)
    assert series.nbytes <= MEMORY_LIMIT


def test_memory_stays_flat_as_the_event_rate_grows(spec: Spec) -> None:
    """100x more events per pane costs only a few more sketch bins, not more memory per event."""
    sizes = []
    for per_pane in (50, 5000):
        series = Series(spec, c.SLI_TTFF, c.KIND_RUM)
        _fill(series, np.random.default_rng(2), False, per_pane)
        sizes.append(series.nbytes)
    print(f"\nseries memory at 50 vs 5000 events per pane: {sizes} bytes")
    assert sizes[1] <= MEMORY_LIMIT
    assert sizes[1] / sizes[0] < 1.5


@pytest.mark.parametrize(
    ("ahead_s", "moves_head"),
    [(30.0, True), (120.0, False), (1e300, False)],
    ids=[
        "a pane 30 s ahead of the wall clock moves the head (within the allowed skew)",
        "a pane two minutes ahead of the wall clock cannot move the head",
        "a pane at 1e300 cannot move the head",
    ],
)
def test_a_head_never_jumps_beyond_the_wall_clock_plus_the_allowed_skew(
    spec: Spec, ahead_s: float, moves_head: bool
) -> None:
    series = Series(spec, c.SLI_TTFF, c.KIND_RUM)
    now = 10_000_000.0
    series.advance(now)
    heads = {w: w.head for w in series.windows.values()}
    pane = math.floor((now + ahead_s) / spec.pane_s) * spec.pane_s
    series.apply(make_partial(spec, [9.0], pane_start=pane))
    series.apply(make_partial(spec, [0.1], pane_start=math.floor(now / spec.pane_s) * spec.pane_s))
    minute = series.window(60.0)
    assert (minute.head != heads[minute]) is moves_head
    assert minute.count == (2 if moves_head else 1)
    assert series.count == 2  # cumulative totals take everything, as for late partials


def test_a_poisoned_head_loaded_from_a_changelog_is_reset_by_the_next_advance(spec: Spec) -> None:
    poisoned = Window(60.0, 2.0, FIRST_EDGE, with_sketch=False)
    poisoned.add(1e12, one(5, FIRST_EDGE), 1.0, 0.1, 0.2, None)  # no advance yet: no limit
    window = Window(60.0, 2.0, FIRST_EDGE, with_sketch=False)
    window.load(poisoned.state())
    now = 10_000_000.0
    window.advance(now)
    assert window.head == window.index(now) and window.count == 0
    assert window.add(now - 1.0, one(1, FIRST_EDGE), 0.1, 0.1, 0.1, None)
    assert window.count == 1
