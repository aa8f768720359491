"""Benchmark slo.sketch.LogSketch against the ddsketch package and Prometheus-style histograms.

Run: ``python bench/bench_sketch.py [--baseline REV]`` (bounded: about 5-20 s on 2
shared cores).

Prints these tables and ends with one ``RESULT key=value ...`` line:

1. batch insert values/s at batch sizes 64 / 1024 / 65536 vs the ``ddsketch``
   package's per-value ``add`` loop (ratio measured in the same run);
2. merges/s for typical latency pane sketches vs ``ddsketch``'s ``merge``;
3. serialized size (ours vs ddsketch's protobuf) for 1e3 and 1e5 values;
4. relative error of p50..p99.9 vs numpy's default percentile for this sketch and for
   Prometheus ``histogram_quantile`` on the default Prometheus buckets and on the spec's
   buckets, and of the sketch's ``"lower"`` estimate vs the order statistic;
5. worst relative error on sparse tails (few events, heavy tails) over many seeds;
6. windows memory: one stage-2 series (region x SLI x kind) with every pane full;
7. with ``--baseline REV``: stage 1's ``add`` + ``flush`` and stage 2's quantile
   export with this sketch and with ``slo/sketch.py`` of git revision REV, paired.

Timings are process CPU time, taken round-robin over 15 rounds; rates are the best
round, ratios the median of per-round ratios to the baseline. Only ratios are meant
to be compared across runs on a shared machine.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from bench_sketch_pipeline import bench_paired, bench_sparse, bench_windows_memory
from ddsketch import DDSketch

from slo.sketch import LogSketch
from slo.spec import load_spec

ALPHA = 0.01
QS = (0.5, 0.9, 0.95, 0.99, 0.999)
PROM_DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RNG = np.random.default_rng(42)


Cases = dict[str, tuple[Callable[[], object], int]]


def timed_rounds(cases: Cases, rounds: int = 15) -> dict[str, list[float]]:
    """Ops/s of each case in each round, timed round-robin so cases share the load.

    ``cases`` maps a name to (function, operations per call). Time is this process's
    CPU time: everything here is single-threaded, and on a shared machine CPU time
    leaves out the time other processes hold the core (wall time does not).
    """
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (fn, ops) in cases.items():
            t0 = time.process_time()
            fn()
            rates[name].append(ops / max(time.process_time() - t0, 1e-9))
    return rates


def summarize(rates: dict[str, list[float]], baseline: str) -> dict[str, tuple[float, float]]:
    """(best ops/s, median of per-round ratios to ``baseline``) for each case.

    The ratio pairs each case with the baseline run right before it in the same
    round, so a load spike on the shared machine cancels out; the median drops
    the rounds where it did not.
    """
    base = rates[baseline]
    return {
        name: (max(r), float(np.median([x / b for x, b in zip(r, base, strict=True)])))
        for name, r in rates.items()
    }


def print_table(title: str, unit: str, rows: dict[str, tuple[float, float]]) -> None:
    print(f"\n## {title}")
    print(f"{'operation':<38}{'best ' + unit:>16}{'ratio (median)':>16}")
    for name, (rate, ratio) in rows.items():
        print(f"{name:<38}{rate:>16,.0f}{ratio:>15.1f}x")


def latencies(kind: str, n: int, rng: np.random.Generator = RNG) -> np.ndarray:
    """Synthetic latencies in seconds with medians around 50-150 ms."""
    if kind == "lognormal":
        return rng.lognormal(math.log(0.1), 0.6, n)
    if kind == "bimodal":
        fast = rng.lognormal(math.log(0.06), 0.3, n * 7 // 10)
        slow = rng.lognormal(math.log(0.45), 0.35, n - len(fast))
        return rng.permutation(np.concatenate([fast, slow]))
    if kind == "outlier-heavy":
        body = rng.lognormal(math.log(0.12), 0.5, n - n // 50)
        stalls = rng.uniform(3.0, 600.0, n // 50)
        return rng.permutation(np.concatenate([body, stalls]))
    raise ValueError(kind)


# -- 1. batch insert ------------------------------------------------------------


def bench_insert() -> dict[int, float]:
    data = latencies("lognormal", 1 << 17)
    base_vals = data[:20_000].tolist()  # Python floats, as an ingest loop would have them

    def dd_loop() -> None:  # the baseline: ddsketch's per-value add
        d = DDSketch(ALPHA)
        for x in base_vals:
            d.add(x)

    def ours_scalar() -> None:
        s = LogSketch(ALPHA)
        for x in base_vals:
            s.add(x)

    cases: Cases = {
        "ddsketch per-value add loop": (dd_loop, len(base_vals)),
        "LogSketch.add per-value loop": (ours_scalar, len(base_vals)),
    }
    for size in (64, 1024, 65536):
        batches = [data[i : i + size] for i in range(0, min(len(data), size * 256), size)]

        def ours_batch(batches: list[np.ndarray] = batches) -> None:
            s = LogSketch(ALPHA)
            for b in batches:
                s.add_batch(b)

        cases[f"LogSketch.add_batch, batch {size}"] = (ours_batch, sum(len(b) for b in batches))
    rows = summarize(timed_rounds(cases), "ddsketch per-value add loop")
    print_table("1. Insert rate, lognormal latencies (ratio vs ddsketch's add loop)", "values/s", rows)
    return {size: rows[f"LogSketch.add_batch, batch {size}"][1] for size in (64, 1024, 65536)}


# -- 2. merges ------------------------------------------------------------------


def pane_sketches(n_sketches: int, values: int, seed: int) -> list[LogSketch]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_sketches):
        s = LogSketch(ALPHA)
        s.add_batch(latencies("lognormal", values, rng))
        out.append(s)
    return out


def dd_from(sketch_values: Sequence[np.ndarray]) -> list[DDSketch]:
    out = []
    for vals in sketch_values:
        d = DDSketch(ALPHA)
        for x in vals.tolist():
            d.add(x)
        out.append(d)
    return out


def merge_loop(acc: Any, parts: Sequence[Any], rounds: int) -> Callable[[], None]:
    """A timed body: merge every part into ``acc``, ``rounds`` times."""

    def run() -> None:
        merge = acc.merge
        for _ in range(rounds):
            for p in parts:
                merge(p)

    return run


def bench_merge() -> tuple[float, float]:
    rng = np.random.default_rng(7)
    vals = [latencies("lognormal", 1000, rng) for _ in range(64)]
    ours = []
    for v in vals:
        s = LogSketch(ALPHA)
        s.add_batch(v)
        ours.append(s)
    small = pane_sketches(64, 30, 8)  # sparse panes: narrower key ranges than the accumulator
    acc = LogSketch(ALPHA)
    for s in ours:
        acc.merge(s)
    twins = [s for s in ours if (s._offset, len(s._bins)) == (acc._offset, len(acc._bins))]
    dd_acc = DDSketch(ALPHA)
    dd_parts = dd_from(vals[:16])
    blobs = [s.to_bytes() for s in ours]

    def fresh_merge() -> None:
        for _ in range(20):
            for s in ours:
                LogSketch(ALPHA).merge(s)

    def decode_merge() -> None:
        for _ in range(10):
            for b in blobs:
                acc.merge(LogSketch.from_bytes(b))

    def roll() -> None:
        for _ in range(20):
            for s in ours:
                acc.merge(s)
            for s in ours:
                acc.subtract(s)

    cases: Cases = {
        "ddsketch merge, 1000-value panes": (merge_loop(dd_acc, dd_parts, 20), 20 * 16),
        "LogSketch.merge, 1000-value panes": (merge_loop(acc, ours, 200), 200 * 64),
        "LogSketch.merge, 30-value panes": (merge_loop(acc, small, 200), 200 * 64),
        "LogSketch.merge, same layout": (merge_loop(acc.copy(), [acc], 5000), 5000),
        "new LogSketch + merge (a copy)": (fresh_merge, 20 * 64),
        "from_bytes + merge, 1000-value": (decode_merge, 10 * 64),
        "merge + subtract pair (window roll)": (roll, 20 * 64),
    }
    rows = summarize(timed_rounds(cases), "ddsketch merge, 1000-value panes")
    print_table("2. Merge rate, lognormal panes (ratio vs ddsketch's merge)", "ops/s", rows)
    print(
        f"({len(twins)}/64 panes share the accumulator's layout; the others take the "
        "sub-range path)"
    )
    return rows["LogSketch.merge, 1000-value panes"]


# -- 3. size --------------------------------------------------------------------


def bench_size() -> dict[str, int]:
    try:
        from ddsketch.pb.proto import DDSketchProto

        to_proto: Callable[[DDSketch], Any] | None = DDSketchProto.to_proto
    except ImportError:  # protobuf missing: the ddsketch column shows n/a
        to_proto = None
    print("\n## 3. Serialized size (bytes)")
    print(f"{'data':<26}{'values':>8}{'to_bytes':>10}{'nbytes':>8}{'ddsketch pb':>13}")
    sizes: dict[str, int] = {}
    for kind in ("lognormal", "outlier-heavy"):
        for n in (1_000, 100_000):
            v = latencies(kind, n, np.random.default_rng(3))
            s = LogSketch(ALPHA)
            s.add_batch(v)
            pb = "n/a"
            if to_proto is not None:
                d = DDSketch(ALPHA)
                for x in v.tolist():
                    d.add(x)
                pb = str(len(to_proto(d).SerializeToString()))
            size = len(s.to_bytes())
            sizes[f"{kind}_{n}"] = size
            print(f"{kind:<26}{n:>8}{size:>10}{s.nbytes:>8}{pb:>13}")
    return sizes


# -- 4. error table -------------------------------------------------------------


def histogram_quantile(q: float, edges: Sequence[float], values: np.ndarray) -> float:
    """Prometheus ``histogram_quantile`` on cumulative ``le`` buckets built from ``values``.

    Follows promql/quantile.go ``bucketQuantile``: rank = q * total, first bucket whose
    cumulative count >= rank, linear interpolation inside it (lower bound 0 for the
    first bucket), and the highest finite upper bound if the rank falls in +Inf.
    """
    bounds = [*edges, math.inf]
    cum = [int(np.count_nonzero(values <= e)) for e in edges] + [len(values)]
    total = cum[-1]
    if total == 0:
        return math.nan
    rank = q * total
    b = next((i for i in range(len(bounds) - 1) if cum[i] >= rank), len(bounds) - 1)
    if b == len(bounds) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, count = 0.0, bounds[b], float(cum[b])
    if b > 0:
        start = bounds[b - 1]
        count -= cum[b - 1]
        rank -= cum[b - 1]
    return start + (end - start) * (rank / count)


def bench_error() -> dict[str, float]:
    spec, _ = load_spec()
    methods: list[tuple[str, Sequence[float] | None]] = [
        ("LogSketch a=1%", None),
        ("LogSketch lower", None),
        ("prom default buckets", PROM_DEFAULT_BUCKETS),
        ("spec buckets", spec.histogram_buckets_s),
    ]
    worst = {name: 0.0 for name, _ in methods}
    print("\n## 4. Relative error vs exact (1e5 values; exact = numpy's default percentile,")
    print("##    and the order statistic at floor(q*(n-1)) for 'LogSketch lower')")
    print(f"spec buckets: {', '.join(f'{e:g}' for e in spec.histogram_buckets_s)}")
    header = "".join(f"{'p' + format(q * 100, 'g'):>9}" for q in QS)
    print(f"{'data':<15}{'method':<22}{header}")
    for kind in ("lognormal", "bimodal", "outlier-heavy"):
        v = latencies(kind, 100_000, np.random.default_rng(11))
        s = LogSketch(ALPHA)
        s.add_batch(v)
        for name, edges in methods:
            lower = name == "LogSketch lower"
            exact = [float(np.quantile(v, q, method="lower" if lower else "linear")) for q in QS]
            if edges is None:
                est = [float(x) for x in s.quantiles(QS, "lower" if lower else "linear") if x is not None]
            else:
                est = [histogram_quantile(q, edges, v) for q in QS]
            errs = [abs(e - x) / x for e, x in zip(est, exact, strict=True)]
            worst[name] = max(worst[name], *errs)
            cells = "".join(f"{e * 100:>8.2f}%" for e in errs)
            print(f"{kind:<15}{name:<22}{cells}")
    return worst


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--baseline", metavar="REV", help="also pair stage 1/2 against slo/sketch.py at REV")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    insert = bench_insert()
    merges, merge_ratio = bench_merge()
    sizes = bench_size()
    worst = bench_error()
    sparse = bench_sparse()
    memory = bench_windows_memory()
    paired = bench_paired(args.baseline) if args.baseline else {}
    print(f"\nelapsed {time.perf_counter() - t0:.1f} s")
    print(
        "RESULT "
        f"insert_ratio_b64={insert[64]:.1f} insert_ratio_b1024={insert[1024]:.1f} "
        f"insert_ratio_b65536={insert[65536]:.1f} "
        f"merges_per_s={merges:.0f} merge_ratio_vs_ddsketch={merge_ratio:.1f} "
        f"bytes_1e3={sizes['lognormal_1000']} bytes_1e5={sizes['lognormal_100000']} "
        f"max_err_sketch_pct={worst['LogSketch a=1%'] * 100:.3f} "
        f"max_err_sketch_lower_pct={worst['LogSketch lower'] * 100:.3f} "
        f"max_err_prom_default_pct={worst['prom default buckets'] * 100:.1f} "
        f"max_err_spec_buckets_pct={worst['spec buckets'] * 100:.1f} "
        + " ".join(f"{k}={v:.3f}" for k, v in {**sparse, **memory, **paired}.items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
