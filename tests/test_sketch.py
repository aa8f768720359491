"""Tests for slo.sketch.LogSketch: accuracy, ddsketch parity, merge/subtract, edge cases, bytes."""

from __future__ import annotations

import math
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from ddsketch import DDSketch
from hypothesis import given, settings
from hypothesis import strategies as st

from slo.rolling import FIRST_EDGE, Window
from slo.sketch import CHUNK, QUANTILE_METHODS, RELATIVE_ACCURACY, LogSketch, QuantileMethod

ALPHA = RELATIVE_ACCURACY  # the pipeline's accuracy is the one checked against ddsketch
QS = [0.5, 0.9, 0.95, 0.99, 0.999]
N = 100_000
MAX_INDEXABLE = sys.float_info.max / (1 + 2 * ALPHA / (1 - ALPHA))  # ddsketch's max_possible
GOLDEN = Path(__file__).resolve().parent / "golden" / "sketch_v1.hex"


def _lognormal(rng: np.random.Generator) -> np.ndarray:
    return rng.lognormal(math.log(0.1), 0.6, N)


def _bimodal(rng: np.random.Generator) -> np.ndarray:
    fast = rng.lognormal(math.log(0.05), 0.3, N * 7 // 10)
    slow = rng.lognormal(math.log(0.4), 0.4, N - len(fast))
    return rng.permutation(np.concatenate([fast, slow]))


def _outliers(rng: np.random.Generator) -> np.ndarray:
    body = rng.lognormal(math.log(0.12), 0.5, N - 2_000)
    stalls = rng.uniform(5.0, 600.0, 1_500)  # multi-second stalls up to 10 min
    tiny = rng.uniform(1e-4, 1e-3, 500)  # cache hits in 0.1 ms .. 1 ms
    return rng.permutation(np.concatenate([body, stalls, tiny]))


DATASETS = {
    "lognormal": _lognormal,
    "bimodal": _bimodal,
    "outlier-heavy": _outliers,
}
DATASET_IDS = [
    "lognormal latencies around 100 ms",
    "bimodal latencies at 50 ms and 400 ms",
    "outlier-heavy latencies with 10-minute stalls and sub-millisecond hits",
]


@pytest.fixture(scope="module", params=list(DATASETS), ids=DATASET_IDS)
def data(request: pytest.FixtureRequest) -> np.ndarray:
    return DATASETS[request.param](np.random.default_rng(20260401))


def _exact(values: np.ndarray, q: float, method: QuantileMethod = "linear") -> float:
    # "linear" is numpy's default; "lower" is the sorted value at floor(q*(n-1)),
    # ddsketch's rank rule (the lowest bucket whose cumulative count exceeds q*(n-1)).
    return float(np.quantile(values, q, method=method))


def _assert_accurate(sketch: LogSketch, values: np.ndarray, qs: list[float] = QS,
                     alpha: float = ALPHA) -> None:
    for method in QUANTILE_METHODS:
        for q, got in zip(qs, sketch.quantiles(qs, method), strict=True):
            want = _exact(values, q, method)
            assert got is not None
            assert abs(got - want) <= alpha * want * (1 + 1e-12), (method, q, got, want)


def test_quantiles_are_within_alpha_of_exact_ranks(data: np.ndarray) -> None:
    s = LogSketch(ALPHA)
    s.add_batch(data)
    assert s.count == len(data)
    _assert_accurate(s, data)


def test_accuracy_holds_after_bytes_roundtrip_and_merging_64_partials(data: np.ndarray) -> None:
    whole = LogSketch(ALPHA)
    whole.add_batch(data)
    merged = LogSketch(ALPHA)
    for part in np.array_split(data, 64):
        p = LogSketch(ALPHA)
        p.add_batch(part)
        merged.merge(LogSketch.from_bytes(p.to_bytes()))
    assert merged == whole
    assert merged.quantiles(QS) == whole.quantiles(QS)
    _assert_accurate(merged, data)


def _ddsketch_linear(ref: DDSketch, q: float) -> float:
    """numpy's default definition computed from ddsketch's values at the two ranks around q(n-1)."""
    n = int(ref.count)
    h = q * (n - 1)
    lo = math.floor(h)
    low = ref.get_quantile_value(q)
    # q slightly above rank lo + 1 (float noise at exactly (lo+1)/(n-1) could land on lo)
    high = ref.get_quantile_value(min(1.0, (lo + 1.5) / (n - 1))) if n > 1 else low
    assert low is not None and high is not None
    return float(low + (h - lo) * (high - low))


def _assert_matches_ddsketch(ours: LogSketch, ref: DDSketch, qs: list[float]) -> None:
    """Same buckets: "lower" is ddsketch's value, "linear" interpolates ddsketch's rank values."""
    for q in qs:
        lower, linear = ours.quantile(q, "lower"), ours.quantile(q)
        assert lower == pytest.approx(ref.get_quantile_value(q), rel=1e-9), q
        assert linear == pytest.approx(_ddsketch_linear(ref, q), rel=1e-9), q


def test_quantiles_equal_the_ddsketch_package(data: np.ndarray) -> None:
    ours = LogSketch(ALPHA)
    ours.add_batch(data)
    ref = DDSketch(ALPHA)
    for x in data.tolist():
        ref.add(x)
    _assert_matches_ddsketch(ours, ref, [0.0, 0.001, 0.25, *QS, 0.9999, 1.0])


def _gamma(alpha: float) -> float:
    return 1 + 2 * alpha / (1 - alpha)


def _sparse(kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "heavy lognormal":
        return rng.lognormal(math.log(0.1), 1.5, 20)
    if kind == "pareto":
        return 0.05 * (1 + rng.pareto(1.2, 1_000))
    if kind == "stalls":
        return np.concatenate([rng.lognormal(math.log(0.12), 0.5, 95), rng.uniform(3.0, 600.0, 5)])
    if kind == "dense":
        return rng.lognormal(math.log(0.1), 1.0, 300_000)
    raise ValueError(kind)


SPARSE_QS = [0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1.0]


@pytest.mark.parametrize(
    ("alpha", "values"),
    [
        pytest.param(0.01, _sparse("heavy lognormal", 1), id="a p99 over 20 heavy-tailed lognormal events"),
        pytest.param(0.01, _sparse("heavy lognormal", 2), id="another seed of 20 heavy-tailed events"),
        pytest.param(0.01, _sparse("pareto", 3), id="a p99.9 over 1000 pareto events with tail index 1.2"),
        pytest.param(0.01, _sparse("stalls", 4), id="100 events whose top 5 are stalls of seconds to minutes"),
        pytest.param(0.01, _sparse("dense", 5), id="300k lognormal events with sigma 1"),
        pytest.param(0.01, [0.001, 0.01, 0.1, 1.0, 10.0], id="five events four decades apart"),
        pytest.param(0.01, [0.1, 5.0], id="two events"),
        pytest.param(0.01, [0.25], id="a single event"),
        pytest.param(0.01, [0.0] * 5 + [0.3, 7.0], id="zeros below a sparse tail"),
        pytest.param(0.01, [_gamma(0.01) ** k for k in range(-400, -60, 17)],
                     id="values on bucket upper edges, where a bucket's value is alpha off"),
        pytest.param(0.01, [math.nextafter(_gamma(0.01) ** k, math.inf) for k in range(-400, -60, 17)],
                     id="values just above bucket lower edges, alpha off the other way"),
        pytest.param(0.01, [_gamma(0.01) ** -200, math.nextafter(_gamma(0.01) ** -201, math.inf)] * 3,
                     id="both ends of one bucket, interpolated inside it"),
        pytest.param(0.005, _sparse("heavy lognormal", 6), id="20 heavy-tailed events at alpha 0.5 %"),
        pytest.param(0.02, _sparse("pareto", 7), id="1000 pareto events at alpha 2 %"),
    ],
)
def test_sparse_tails_are_within_alpha_of_numpy_default_and_of_the_order_statistic(
    alpha: float, values: list[float] | np.ndarray
) -> None:
    """Within α of ``numpy.quantile`` (default) and, with ``"lower"``, of the order statistic.

    The default estimate also stays within α of the two order statistics around
    the rank (it is a weighted mean of them), and a merge of partials gives the
    same quantiles as the whole.
    """
    x = np.asarray(values, dtype=np.float64)
    s = LogSketch(alpha)
    s.add_batch(x)
    _assert_accurate(s, x, SPARSE_QS, alpha)
    slack = alpha * (1 + 1e-12)
    for q, got in zip(SPARSE_QS, s.quantiles(SPARSE_QS), strict=True):
        lo, hi = (float(np.quantile(x, q, method=m)) for m in ("lower", "higher"))
        assert got is not None and lo * (1 - slack) <= got <= hi * (1 + slack), (q, got, lo, hi)
    merged = LogSketch(alpha)
    for part in np.array_split(np.random.default_rng(0).permutation(x), 7):
        p = LogSketch(alpha)
        p.add_batch(part)
        merged.merge(LogSketch.from_bytes(p.to_bytes()))
    assert merged == s and merged.quantiles(SPARSE_QS) == s.quantiles(SPARSE_QS)


def test_every_sketch_of_the_pipeline_uses_the_one_relative_accuracy() -> None:
    # Sketches of different accuracy cannot merge: stage 2's window sketches
    # must be stage 1's (tests/test_stage1.py checks the wire partials).
    window = Window(60.0, 10.0, FIRST_EDGE + 1, with_sketch=True)
    assert window.sketch is not None and window.sketch.relative_accuracy == RELATIVE_ACCURACY
    assert LogSketch().relative_accuracy == RELATIVE_ACCURACY


@pytest.mark.parametrize(
    ("alpha", "values"),
    [
        (0.01, [0.0, 0.0, 1e-4, 0.2, 600.0]),
        (0.02, [1e-300, 3.0, 3.0, 7.5e12]),
        (0.005, [sys.float_info.min, 1.0, 2.0]),
    ],
    ids=[
        "zeros and the spec's seconds range agree with ddsketch at 1 %",
        "extreme magnitudes agree with ddsketch at 2 %",
        "a value below the smallest indexable value counts as zero, like ddsketch",
    ],
)
def test_small_inputs_match_ddsketch_per_quantile(alpha: float, values: list[float]) -> None:
    ours = LogSketch(alpha)
    ours.add_batch(values)
    ref = DDSketch(alpha)
    for x in values:
        ref.add(x)
    _assert_matches_ddsketch(ours, ref, [float(q) for q in np.linspace(0, 1, 21)])


@pytest.mark.parametrize(
    ("values", "count", "zeros", "rejected", "clamped"),
    [
        ([float("nan"), 0.1], 1, 0, 1, 0),
        ([-0.5, -1e-320, 0.1], 1, 0, 2, 0),
        ([float("inf"), float("-inf"), 0.1], 1, 0, 2, 0),
        ([0.0, -0.0, 5e-324], 3, 3, 0, 0),
        ([sys.float_info.max, 1.0], 2, 0, 0, 1),
        ([math.nextafter(MAX_INDEXABLE, math.inf)] * 3, 3, 0, 0, 3),
        ([], 0, 0, 0, 0),
    ],
    ids=[
        "NaN is rejected and counted, never inserted",
        "negative values (even tiny ones) are rejected",
        "positive and negative infinity are rejected",
        "zero, negative zero and subnormals below the smallest indexable value count as zero",
        "a value above the largest indexable value is clamped and counted",
        "values just above the largest indexable value, in its top key, still count as clamped",
        "an empty batch changes nothing",
    ],
)
def test_special_values_are_counted_explicitly(
    values: list[float], count: int, zeros: int, rejected: int, clamped: int
) -> None:
    batch = LogSketch()
    batch.add_batch(np.array(values, dtype=np.float64))
    one = LogSketch()
    for v in values:
        one.add(v)
    for s in (batch, one):
        assert (s.count, s.zero_count, s.rejected, s.clamped) == (count, zeros, rejected, clamped)
    assert batch == one


def test_clamped_values_read_back_as_the_largest_indexable_value() -> None:
    s = LogSketch()
    s.add_batch([sys.float_info.max, sys.float_info.max])
    top = s.quantile(1.0)
    assert top is not None and math.isfinite(top)
    assert top == pytest.approx(MAX_INDEXABLE, rel=0.011)


def test_zeros_are_exact_and_interpolated_like_numpy() -> None:
    values = [0.0] * 30 + [0.2] * 70
    s = LogSketch()
    s.add_batch(values)
    # rank = q * (n - 1): 0.3 * 99 = 29.7 lies 70 % of the way from the last zero to 0.2
    zero, between, first_value, top = s.quantiles([0.0, 0.3, 0.31, 1.0], "lower")
    assert zero == between == 0.0
    assert first_value == top == pytest.approx(0.2, rel=0.01)
    zero, between, first_value, top = s.quantiles([0.0, 0.3, 0.31, 1.0])
    assert zero == 0.0
    assert between == pytest.approx(float(np.quantile(values, 0.3)), rel=0.01)  # 0.14
    assert first_value == top == pytest.approx(0.2, rel=0.01)


@pytest.mark.parametrize(
    "q",
    [-0.01, 1.0000001, float("nan"), float("inf")],
    ids=["a negative quantile", "a quantile above one", "a NaN quantile", "an infinite quantile"],
)
def test_quantile_outside_unit_interval_raises(q: float) -> None:
    s = LogSketch()
    s.add(0.1)
    with pytest.raises(ValueError, match="quantile"):
        s.quantile(q)
    with pytest.raises(ValueError, match="quantile"):
        LogSketch().quantiles([0.5, q])


def test_an_unknown_quantile_method_raises() -> None:
    s = _filled([0.1])
    with pytest.raises(ValueError, match="quantile method"):
        s.quantiles([0.5], "nearest")  # type: ignore[arg-type]  # what an untyped caller could pass


def test_empty_sketch_returns_none() -> None:
    s = LogSketch()
    s.add_batch([float("nan"), -1.0])
    assert s.is_empty and s.count == 0 and s.rejected == 2
    assert s.quantile(0.5) is None
    assert s.quantiles([0.0, 1.0]) == [None, None]
    assert s.nbytes == 0


@pytest.mark.parametrize(
    "alpha",
    [0.0, 1.0, -0.1, float("nan")],
    ids=["zero accuracy", "accuracy of one", "negative accuracy", "NaN accuracy"],
)
def test_invalid_relative_accuracy_raises(alpha: float) -> None:
    with pytest.raises(ValueError, match="relative_accuracy"):
        LogSketch(alpha)


def test_merging_different_accuracies_raises() -> None:
    a, b = LogSketch(0.01), LogSketch(0.02)
    b.add(1.0)
    with pytest.raises(ValueError, match="relative accuracy"):
        a.merge(b)
    with pytest.raises(ValueError, match="relative accuracy"):
        a.subtract(b)


def _filled(values: list[float]) -> LogSketch:
    s = LogSketch()
    s.add_batch(values)
    return s


@pytest.mark.parametrize(
    ("a_values", "b_values"),
    [
        ([0.1, 0.2, 0.3], [0.15, 0.25]),
        ([0.1, 0.2], [1e-4, 600.0, 0.0, float("nan")]),
        ([], [0.05, 0.06]),
        ([0.05, 0.0], []),
        ([1e-4], [1e4]),
    ],
    ids=[
        "overlapping ranges",
        "the second sketch widens the range on both sides and brings zeros and rejects",
        "merging into an empty sketch",
        "merging an empty sketch",
        "disjoint ranges eight decades apart",
    ],
)
def test_subtract_undoes_merge(a_values: list[float], b_values: list[float]) -> None:
    a, b = _filled(a_values), _filled(b_values)
    total = a.copy()
    total.merge(b)
    assert total.count == a.count + b.count
    assert total == _filled(a_values + b_values)
    total.subtract(b)
    assert total == a


@pytest.mark.parametrize(
    ("have", "remove"),
    [
        ([0.1, 0.2], [0.1, 0.1]),
        ([0.1], [0.3]),
        ([0.1], [0.0]),
        ([0.1], [float("nan")]),
        ([], [1e-4]),
    ],
    ids=[
        "removing a value twice",
        "removing a value that was never added",
        "removing a zero that was never added",
        "removing a reject that was never counted",
        "removing from an empty sketch",
    ],
)
def test_subtract_that_would_go_negative_raises_and_changes_nothing(
    have: list[float], remove: list[float]
) -> None:
    s = _filled(have)
    before = s.copy()
    with pytest.raises(ValueError, match="negative"):
        s.subtract(_filled(remove))
    assert s == before


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=40),
    st.lists(st.floats(min_value=0.0, max_value=1e6), max_size=40),
)
def test_add_add_batch_merge_and_subtract_agree(xs: list[float], ys: list[float]) -> None:
    one_by_one = LogSketch()
    for x in xs + ys:
        one_by_one.add(x)
    a, b = _filled(xs), _filled(ys)
    merged = a.copy()
    merged.merge(b)
    assert merged == one_by_one
    assert merged.quantiles([0.0, 0.5, 1.0]) == one_by_one.quantiles([0.0, 0.5, 1.0])
    merged.subtract(a)
    assert merged == b
    assert LogSketch.from_bytes(merged.to_bytes()) == b


def test_copy_is_independent() -> None:
    a = _filled([0.1, 0.2])
    c = a.copy()
    c.add(5.0)
    assert a.count == 2 and c.count == 3 and a != c


def test_bins_are_chunk_aligned_and_small_for_a_latency_pane() -> None:
    s = _filled(list(np.random.default_rng(1).lognormal(math.log(0.1), 0.6, 1_000)))
    assert s._offset % CHUNK == 0 and len(s._bins) % CHUNK == 0
    # ~200 panes x 2 latency SLIs per region must fit in 1.5 MB
    assert 2 * 200 * s.nbytes < 1_500_000


@pytest.mark.parametrize(
    "values",
    [[], [0.0, float("nan")], [0.1] * 300, [1e-4, 600.0] * 70_000],
    ids=["an empty sketch", "only zeros and rejects", "bins wider than one byte", "bins wider than two bytes"],
)
def test_bytes_roundtrip_is_exact(values: list[float]) -> None:
    s = _filled(values)
    back = LogSketch.from_bytes(s.to_bytes())
    assert back == s
    assert (back.zero_count, back.rejected, back.clamped) == (s.zero_count, s.rejected, s.clamped)


def _flip_bit(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x10
    return bytes(b)


def _resealed(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def _header_with(**changes: object) -> bytes:
    fields = dict(zip(
        ["magic", "version", "width", "alpha", "zeros", "rejected", "clamped", "first", "n"],
        struct.unpack_from("<3sBBdQQQiI", _filled([0.1, 0.2]).to_bytes()),
        strict=True,
    ))
    good = _filled([0.1, 0.2]).to_bytes()
    fields.update(changes)
    head = struct.pack("<3sBBdQQQiI", *fields.values())
    return _resealed(head + good[struct.calcsize("<3sBBdQQQiI") : -4])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        _filled([0.1, 0.2]).to_bytes()[:20],
        _filled([0.1, 0.2]).to_bytes()[:-1],
        _flip_bit(_filled([0.1, 0.2, 0.3]).to_bytes(), -6),
        _header_with(magic=b"XYZ"),
        _header_with(version=2),
        _header_with(width=3),
        _header_with(width=0),
        _header_with(alpha=1.5),
        _header_with(n=5),
        _header_with(first=10**9),
    ],
    ids=[
        "no bytes at all",
        "a truncated header",
        "a missing last byte",
        "a flipped bit in a bin count",
        "a wrong magic",
        "an unknown version",
        "an unknown bin width",
        "no bin width with bins present",
        "an accuracy outside (0, 1)",
        "more bins announced than present",
        "a key range outside the mapping",
    ],
)
def test_corrupt_bytes_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"sketch|LogSketch"):
        LogSketch.from_bytes(data)


def test_serialized_format_matches_golden(update_golden: bool) -> None:
    s = _filled([0.0, 0.001, 0.1, 0.1, 0.25, 3.0, float("nan"), -1.0])
    got = s.to_bytes().hex() + "\n"
    if update_golden:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(got)
    assert GOLDEN.read_text() == got, "wire format changed: bump the version or --update-golden"
