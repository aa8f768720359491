"""Sections 5-7 of ``bench/bench_sketch.py``: sparse tails, windows memory, stage 1/2 paired.

Use through ``python bench/bench_sketch.py [--baseline REV]``; each function prints
its table and returns the figures for the RESULT line:

- :func:`bench_sparse`: worst relative error over many seeds on few, heavy-tailed
  events, for the exported estimate (numpy's default definition), for ``"lower"``
  (what was exported before 2026-12-01) against numpy's default, and for
  ``"lower"`` against the order statistic it estimates;
- :func:`bench_windows_memory`: bytes of one stage-2 ``Series`` (region x SLI x
  kind) with every pane of every window full, as ``tests/test_windows.py`` fills it;
- :func:`bench_paired`: stage 1's ``add`` + ``flush`` (which builds and serializes
  the pane sketches) and stage 2's quantile export, with this ``slo/sketch.py`` and
  with the one at a git revision, interleaved rounds, median of per-round ratios.
"""

from __future__ import annotations

import importlib.util
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

from slo import conventions as c
from slo import stage1
from slo.beacon import Beacon, Event
from slo.sketch import LogSketch
from slo.spec import load_spec
from slo.windows import COUNT, Series

ROOT = Path(__file__).resolve().parent.parent
QS = (0.5, 0.9, 0.95, 0.99, 0.999)


# -- 5. sparse tails ------------------------------------------------------------------


def _tail(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "lognormal s=0.6":
        return rng.lognormal(math.log(0.1), 0.6, n)
    if kind == "lognormal s=1.5":
        return rng.lognormal(math.log(0.1), 1.5, n)
    if kind == "pareto a=1.2":
        return 0.05 * (1 + rng.pareto(1.2, n))
    raise ValueError(kind)


def bench_sparse() -> dict[str, float]:
    """Worst error over seeds x (p50..p99.9) on sparse and dense data; see the module doc."""
    print("\n## 5. Sparse tails: worst relative error over seeds, p50..p99.9")
    print(f"{'data':<18}{'events':>8}{'seeds':>7}{'exported vs numpy':>19}"
          f"{'lower vs numpy':>16}{'lower vs order stat':>21}")
    worst_all = [0.0, 0.0, 0.0]
    for kind in ("lognormal s=0.6", "lognormal s=1.5", "pareto a=1.2"):
        for n, seeds in ((20, 200), (100, 200), (1_000, 100), (300_000, 5)):
            worst = [0.0, 0.0, 0.0]
            for seed in range(seeds):
                x = _tail(kind, n, np.random.default_rng(seed))
                s = LogSketch()
                s.add_batch(x)
                linear, lower = s.quantiles(QS), s.quantiles(QS, "lower")
                for i, q in enumerate(QS):
                    want, order = float(np.quantile(x, q)), float(np.quantile(x, q, method="lower"))
                    got, got_lower = linear[i], lower[i]
                    assert got is not None and got_lower is not None
                    errs = (abs(got - want) / want, abs(got_lower - want) / want,
                            abs(got_lower - order) / order)
                    worst = [max(w, e) for w, e in zip(worst, errs, strict=True)]
            worst_all = [max(w, e) for w, e in zip(worst_all, worst, strict=True)]
            print(f"{kind:<18}{n:>8}{seeds:>7}" + "".join(
                f"{w * 100:>{width}.3f}%" for w, width in zip(worst, (18, 15, 20), strict=True)))
    return {"sparse_max_err_pct": worst_all[0] * 100, "sparse_max_err_lower_vs_numpy_pct": worst_all[1] * 100,
            "sparse_max_err_lower_vs_order_stat_pct": worst_all[2] * 100}


# -- 6. windows memory ----------------------------------------------------------------


def _fill(series: Series, rng: np.random.Generator, wide: bool, per_pane: int) -> None:
    """One partial of ``per_pane`` latencies in every pane of every window."""
    for window in series.windows.values():
        width = window.counts.shape[1]
        for idx in range(window.n):
            if wide:  # adversarial: every pane spans 1 ms .. 60 s
                values = np.exp(rng.uniform(np.log(0.001), np.log(60.0), size=per_pane))
            else:  # lognormal around 120 ms with 2 % slow outliers up to 10 s
                k = max(1, per_pane // 50)
                values = np.concatenate([rng.lognormal(np.log(0.12), 0.5, per_pane - k),
                                         rng.uniform(1.0, 10.0, k)])
            sketch = LogSketch()
            sketch.add_batch(values)
            fields = np.zeros(width, dtype=np.int64)
            fields[COUNT] = values.size
            window.add(idx * window.pane_s, fields, float(values.sum()), float(values.min()),
                       float(values.max()), sketch)


def bench_windows_memory() -> dict[str, float]:
    """``Series.nbytes`` with every pane full: realistic and adversarially wide panes."""
    spec, _ = load_spec()
    print("\n## 6. Windows memory: one series (region x SLI x kind), every pane full (limit 1.5 MB)")
    print(f"{'panes hold':<40}{'events/pane':>12}{'bytes':>12}{'MB':>8}")
    out = {}
    for label, wide in (("lognormal 120 ms + 2 % outliers to 10 s", False), ("1 ms .. 60 s log-uniform", True)):
        for per_pane in (200, 5_000):
            series = Series(spec, c.SLI_TTFF, c.KIND_RUM)
            _fill(series, np.random.default_rng(1), wide, per_pane)
            print(f"{label:<40}{per_pane:>12}{series.nbytes:>12,}{series.nbytes / 2**20:>8.3f}")
            out[f"windows_mb_{'wide' if wide else 'realistic'}_{per_pane}"] = series.nbytes / 2**20
    return out


# -- 7. stage 1 and stage 2, paired against a baseline sketch -----------------------


def load_sketch_at(rev: str) -> ModuleType:
    """``slo/sketch.py`` as of git revision ``rev``, imported under another name."""
    text = subprocess.run(["git", "show", f"{rev}:slo/sketch.py"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="bench-sketch-")) / "baseline_sketch.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("baseline_sketch", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_sketch"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _beacons(n: int, now: float) -> list[Beacon]:
    """``n`` beacons of 20 events (as bench_stream.py sends), 4 regions, both kinds."""
    rng = np.random.default_rng(5)
    regions = ("us-east-1", "eu-west-1", "ap-southeast-1", "sa-east-1")
    out = []
    for i in range(n):
        ms = rng.lognormal(math.log(100.0), 0.6, 20)
        ts = now - rng.uniform(0.0, 10.0, 20)
        events = [Event(c.EVENT_FIRST_FRAME if j % 5 == 0 else c.EVENT_INTERACTION, float(ts[j]), float(ms[j]))
                  for j in range(20)]
        kind = c.KIND_PROBE if i % 10 == 0 else c.KIND_RUM
        out.append(Beacon(f"s{i}", i, regions[i % 4], kind, now, now - 0.5, events))
    return out


def _stage1_leg(beacons: list[Beacon], sketch_cls: type) -> Callable[[], float]:
    spec, _ = load_spec()

    def run() -> float:
        # The only seam: the class stage 1 builds its pane sketches with.
        saved = stage1.LogSketch  # type: ignore[attr-defined]
        stage1.LogSketch = sketch_cls  # type: ignore[attr-defined,assignment]
        try:
            t0 = time.process_time()
            s1 = stage1.Stage1(spec)
            s1.begin("beacons/0", -1)
            for offset, b in enumerate(beacons):
                s1.add(b, "beacons/0", offset)
            partials = s1.flush("beacons/0")
            elapsed = time.process_time() - t0
        finally:
            stage1.LogSketch = saved  # type: ignore[attr-defined]
        assert partials
        return 20 * len(beacons) / elapsed

    return run


def _export_leg(sketch_cls: type, values: np.ndarray) -> Callable[[], float]:
    sketch = sketch_cls()
    sketch.add_batch(values)

    def run() -> float:
        t0 = time.process_time()
        for _ in range(2_000):
            sketch.quantiles(c.EXPORTED_QUANTILES)
        return 2_000 / (time.process_time() - t0)

    return run


def _paired(new: Callable[[], float], old: Callable[[], float], rounds: int) -> tuple[float, float, float]:
    """(median new/old ratio, best new, best old), alternating which leg runs first."""
    news, olds, ratios = [], [], []
    for r in range(rounds):
        if r % 2:
            b, a = old(), new()
        else:
            a, b = new(), old()
        news.append(a)
        olds.append(b)
        ratios.append(a / b)
    return statistics.median(ratios), max(news), max(olds)


def bench_paired(rev: str) -> dict[str, float]:
    """Stage-1 events/s and stage-2 quantile exports/s, this sketch vs ``rev``'s, paired."""
    base = load_sketch_at(rev)
    beacons = _beacons(5_000, time.time())
    window = np.random.default_rng(9).lognormal(math.log(0.1), 0.6, 200_000)
    s1_ratio, s1_new, s1_old = _paired(_stage1_leg(beacons, LogSketch), _stage1_leg(beacons, base.LogSketch), 15)
    ex_ratio, ex_new, ex_old = _paired(_export_leg(LogSketch, window), _export_leg(base.LogSketch, window), 15)
    print(f"\n## 7. Paired against slo/sketch.py at {rev} (15 interleaved rounds, process CPU time)")
    print(f"{'operation':<46}{'best this':>14}{'best baseline':>15}{'ratio (median)':>16}")
    print(f"{'stage 1 add + flush, events/s':<46}{s1_new:>14,.0f}{s1_old:>15,.0f}{s1_ratio:>15.3f}x")
    print(f"{'stage 2 export (4 quantiles of a window)/s':<46}{ex_new:>14,.0f}{ex_old:>15,.0f}{ex_ratio:>15.3f}x")
    return {"stage1_ratio_vs_baseline": s1_ratio, "export_ratio_vs_baseline": ex_ratio}
