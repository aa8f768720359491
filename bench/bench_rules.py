"""Benchmark the long-window rules: raw 1d/3d/30d ranges vs sums of hourly counts, in one real Prometheus.

Run: ``python bench/bench_rules.py [--days 31] [--regions 4] [--evals 8]`` (about
3-6 min on 2 shared cores, a few hundred MB in a temporary directory).

1. Writes ``--days`` of the default spec's series at a 1 m scrape interval (a
   benchmark, not production's 15-30 s: it keeps the file at ~2M samples) for
   ``--regions`` regions as OpenMetrics: per region and latency SLI the
   ``_count`` and the buckets at the SLO thresholds, plus playback attempts
   and errors; diurnal traffic, Poisson/binomial noise, a few bad hours.
   ``promtool tsdb create-blocks-from openmetrics`` turns it into TSDB blocks.
2. Backfills the hourly counts (group ``streamslo-sli-counts``): a Prometheus on
   those blocks evaluates each count rule on every hour (range query, step 1h,
   as ``promtool tsdb create-blocks-from rules`` does, which would write
   thousands of 2h blocks), and the result becomes one more block.
3. Starts one Prometheus (Debian 2.42) with three groups at the same interval:
   the old raw long windows (``alerting.all_groups(raw_long_windows=True)``,
   records renamed ``bench_old:``), the new long windows, and a copy of the
   hourly counts group evaluated at that interval too (records renamed
   ``bench_counts:``), charged at ``interval / 1h`` of its duration, as the
   real group runs once an hour.
   Reads ``prometheus_rule_group_last_duration_seconds`` for ``--evals``
   evaluations of each group (median).
4. Queries both expressions over the last day on the hour (``query_range``,
   step 1h) and reports the worst relative difference of the error ratios;
   at half past, the counted window is compared with the raw one of the
   hour (the documented edge) and, informationally, with the raw one of now.

Ends with ``RESULT long_window_cost_ratio=X max_rel_diff=X`` (old / new
evaluation time of the long-window groups; worst relative difference on the hour).
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from alerts import long_windows, recording
from alerts.yamlout import dump
from slo import conventions as c
from slo import promql
from slo.durations import format_duration
from slo.model import Spec
from slo.spec import load_spec
from streamslo.testing.ports import free_port
from streamslo.testing.prometheus import PROMETHEUS, PROMTOOL, Server, start_server

HOUR = 3600
STEP = 60  # scrape interval of the synthetic series
GROUP_OLD = "bench-old-long-windows"
GROUP_COUNTS_COST = "bench-counts-cost"
GOOD_SHARE = {0.15: 0.97, 0.2: 0.985, 0.3: 0.995}


def _labels(**labels: str) -> str:
    return promql.selector("", **labels)


def _series(spec: Spec, region: str, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Cumulative counters of one region, one sample per minute."""
    t = np.arange(n) * STEP
    diurnal = 1 + 0.6 * np.sin(2 * math.pi * t / 86400 + rng.uniform(0, 2 * math.pi))
    bad_hours = np.zeros(n)
    for start in rng.choice(n - 60, size=6, replace=False):
        bad_hours[start:start + 60] = rng.uniform(0.05, 0.3)
    out: dict[str, np.ndarray] = {}
    kind = spec.evaluate_kind
    for sli in (c.SLI_TTFF, c.SLI_INTERACTION):
        events = rng.poisson(40 * diurnal)
        base = _labels(region=region, kind=kind, sli=sli)
        out[f"{c.METRIC_LATENCY_COUNT}{base}"] = np.cumsum(events)
        thresholds = sorted({s.threshold_s for s in spec.slos if s.sli == sli and s.threshold_s})
        below, wider = events, 1.0
        # Nested binomials from the widest bucket down keep buckets cumulative:
        # about 99.5 % of events within 300 ms, 98.5 % within 200, 97 % within 150.
        for edge in reversed(thresholds):
            good = GOOD_SHARE.get(edge, 0.9)
            share = np.clip(good / wider - bad_hours, 0.0, 1.0)
            below, wider = rng.binomial(below, share), good
            labels = _labels(region=region, kind=kind, sli=sli, le=promql.le_label(edge))
            out[f"{c.METRIC_LATENCY_BUCKET}{labels}"] = np.cumsum(below)
    attempts = rng.poisson(30 * diurnal)
    errors = rng.binomial(attempts, np.clip(0.004 + bad_hours / 5, 0, 1))
    out[f"{c.METRIC_ATTEMPTS}{_labels(region=region, kind=kind)}"] = np.cumsum(attempts)
    out[f"{c.METRIC_ERRORS}{_labels(region=region, kind=kind)}"] = np.cumsum(errors)
    return out


def write_openmetrics(spec: Spec, regions: list[str], start: int, n: int, path: Path) -> int:
    """Every series as OpenMetrics text (one series after another); returns the sample count."""
    rng = np.random.default_rng(7)
    stamps = [str(start + i * STEP) for i in range(n)]
    samples = 0
    with path.open("w") as out:
        for region in regions:
            for name, values in _series(spec, region, rng, n).items():
                out.write("\n".join(f"{name} {v} {s}" for v, s in zip(values.tolist(), stamps, strict=True)))
                out.write("\n")
                samples += n
        out.write("# EOF\n")
    return samples


def _run(argv: list[str], timeout: float = 1800) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result.stdout


def _prometheus(home: Path, data: Path, rules: str | None, interval: str) -> Server:
    assert PROMETHEUS is not None
    home.mkdir(exist_ok=True)
    config: dict[str, Any] = {"global": {"evaluation_interval": interval}}
    if rules is not None:
        (home / "rules.yml").write_text(rules)
        config["rule_files"] = [str(home / "rules.yml")]
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    argv = [PROMETHEUS, f"--config.file={home / 'prometheus.yml'}", f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=400d",
            "--query.max-samples=200000000", "--query.timeout=10m"]
    return start_server("prometheus", argv, f"http://127.0.0.1:{port}", home / "prometheus.log", timeout_s=300)


def _renamed(group: dict[str, Any], name: str, prefix: str) -> dict[str, Any]:
    rules = [r | {"record": r["record"].replace(f"{c.RECORD_NAMESPACE}:", prefix)} for r in group["rules"]]
    return {"name": name, "rules": rules}


def bench_rules(spec: Spec) -> str:
    """rules.yml with the three measured groups."""
    old_sli = recording.sli_group(spec, raw_long_windows=True)
    counted = {r["record"] for r in recording.long_window_group(spec)["rules"]}
    old = {"name": GROUP_OLD, "rules": [r for r in old_sli["rules"] if r["record"] in counted]}
    old = _renamed(old, GROUP_OLD, "bench_old:")
    counts = recording.counts_group(spec)
    measured = [old, recording.long_window_group(spec), _renamed(counts, GROUP_COUNTS_COST, "bench_counts:")]
    return dump({"groups": measured}, "# bench")


def backfill_counts(prom: Server, spec: Spec, start: int, end: int, path: Path) -> None:
    """The hourly counts group evaluated on every hour of the history, as OpenMetrics.

    What ``promtool tsdb create-blocks-from rules`` does (a range query per
    rule at the group's 1h step), written as one file: promtool's rule
    backfill writes a block per rule per 2h, thousands for a month.
    """
    lines = []
    for rule in recording.counts_group(spec)["rules"]:
        r = httpx.get(f"{prom.url}/api/v1/query_range", timeout=600,
                      params={"query": rule["expr"], "start": start, "end": end, "step": HOUR})
        r.raise_for_status()
        for series in r.json()["data"]["result"]:
            name = promql.selector(rule["record"], **(series["metric"] | rule["labels"]))
            lines += [f"{name} {value} {stamp}" for stamp, value in series["values"]]
    path.write_text("\n".join(lines) + "\n# EOF\n")


def _durations(prom: Server, groups: list[str], evals: int, timeout_s: float) -> dict[str, list[float]]:
    """``prometheus_rule_group_last_duration_seconds`` per group, one value per evaluation."""
    seen: dict[str, dict[float, float]] = {g: {} for g in groups}
    pattern = re.compile(r'prometheus_rule_group_last_(duration_seconds|evaluation_timestamp_seconds)'
                         r'\{rule_group="[^;]*;([^"]+)"\} (\S+)')
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(len(v) < evals for v in seen.values()):
        values: dict[tuple[str, str], float] = {}
        for kind, group, value in pattern.findall(httpx.get(f"{prom.url}/metrics", timeout=30).text):
            values[(kind, group)] = float(value)
        for g in groups:
            stamp = values.get(("evaluation_timestamp_seconds", g), 0.0)
            if stamp > 0:
                seen[g][stamp] = values[("duration_seconds", g)]
        time.sleep(1.0)
    # The first evaluation also warms caches and decodes chunks first: drop it.
    return {g: [d for _, d in sorted(v.items())][1:] for g, v in seen.items()}


def _query_range(prom: Server, expr: str, start: int, end: int) -> dict[tuple[str, int], float]:
    r = httpx.get(f"{prom.url}/api/v1/query_range", timeout=600,
                  params={"query": expr, "start": start, "end": end, "step": HOUR})
    r.raise_for_status()
    out = {}
    for s in r.json()["data"]["result"]:
        for stamp, value in s["values"]:
            out[(s["metric"].get(c.LABEL_REGION, ""), int(stamp))] = float(value)
    return out


def _rel_diff(a: dict[tuple[str, int], float], b: dict[tuple[str, int], float], shift: int = 0) -> float:
    keys = [(r, t) for r, t in a if (r, t - shift) in b]
    if not keys:
        raise RuntimeError("no common samples to compare")
    return max(abs(a[k] - b[(k[0], k[1] - shift)]) / abs(b[(k[0], k[1] - shift)]) for k in keys)


def accuracy(prom: Server, spec: Spec, start: int, end: int) -> dict[str, tuple[float, float, float]]:
    """Per counted window: worst relative difference on the hour, at half past vs the hour, vs now."""
    out = {}
    windows = [s for s in spec.alert_windows_s if long_windows.is_counted(s)]
    for seconds in windows:
        on_hour, edge, now = 0.0, 0.0, 0.0
        for slo in spec.slos:
            raw = promql.sli_error_ratio(slo, format_duration(seconds), spec.evaluate_kind)
            new = long_windows.error_ratio(slo, seconds)
            raw_h, new_h = _query_range(prom, raw, start, end), _query_range(prom, new, start, end)
            raw_half = _query_range(prom, raw, start + HOUR // 2, end - HOUR // 2)
            new_half = _query_range(prom, new, start + HOUR // 2, end - HOUR // 2)
            on_hour = max(on_hour, _rel_diff(new_h, raw_h))
            edge = max(edge, _rel_diff(new_half, raw_h, shift=HOUR // 2))
            now = max(now, _rel_diff(new_half, raw_half))
        out[format_duration(seconds)] = (on_hour, edge, now)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--evals", type=int, default=8)
    parser.add_argument("--interval", default="30s", help="evaluation interval of the measured groups")
    args = parser.parse_args()
    if PROMETHEUS is None or PROMTOOL is None:
        sys.exit("needs prometheus and promtool (Debian packages; scripts/install-deps.sh)")
    spec, _ = load_spec()
    regions = sorted(spec.regions)[: args.regions]
    end = (int(time.time()) // HOUR - 1) * HOUR
    start = end - args.days * 86400
    n = (end - start) // STEP + 1
    if args.days * 86400 < max(spec.alert_windows_s) + 3 * HOUR:
        sys.exit(f"--days must cover the {format_duration(max(spec.alert_windows_s))} period plus 3h")
    work = Path(tempfile.mkdtemp(prefix="bench-rules-"))
    try:
        t0 = time.monotonic()
        samples = write_openmetrics(spec, regions, start, n, work / "series.om")
        data = work / "data"
        # One block for the month (the default 2h blocks would be ~370 that
        # Prometheus compacts while it is being measured).
        _run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "-q", "--max-block-duration=768h",
              str(work / "series.om"), str(data)])
        (work / "series.om").unlink()
        print(f"series: {len(regions)} regions, {samples / n:.0f} series x {n} samples ({args.days} d at "
              f"{STEP} s) = {samples / 1e6:.2f} M samples, blocks in {time.monotonic() - t0:.0f} s")
        prom = _prometheus(work / "backfill", data, None, args.interval)
        try:
            backfill_counts(prom, spec, start + HOUR, end, work / "counts.om")
        finally:
            prom.stop()
        _run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "-q", "--max-block-duration=768h",
              str(work / "counts.om"), str(data)])
        prom = _prometheus(work / "measure", data, bench_rules(spec), args.interval)
        try:
            groups = [GROUP_OLD, c.GROUP_SLI_LONG_WINDOWS, GROUP_COUNTS_COST]
            interval_s = float(args.interval.rstrip("s"))
            runs = _durations(prom, groups, args.evals + 1, timeout_s=30 * interval_s * (args.evals + 2))
            acc = accuracy(prom, spec, start + int(max(spec.alert_windows_s)) + 2 * HOUR, end)
        finally:
            prom.stop()
        report(runs, acc, interval_s, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(runs: dict[str, list[float]], acc: dict[str, tuple[float, float, float]], interval_s: float,
           args: argparse.Namespace) -> None:
    med = {g: statistics.median(v) for g, v in runs.items() if v}
    if len(med) < len(runs):
        sys.exit(f"some groups never evaluated twice: {runs}")
    counts_share = med[GROUP_COUNTS_COST] * interval_s / HOUR
    new = med[c.GROUP_SLI_LONG_WINDOWS] + counts_share
    print(f"\nrule group evaluation (prometheus_rule_group_last_duration_seconds, median of {args.evals}, "
          f"every {args.interval})")
    print(f"{'group':<36} {'median s':>10} {'min s':>9} {'max s':>9}")
    for g, v in runs.items():
        print(f"{g:<36} {med[g]:>10.4f} {min(v):>9.4f} {max(v):>9.4f}")
    print(f"{'new total (long windows + counts/' + str(int(HOUR / interval_s)) + ')':<36} {new:>10.4f}")
    print("\nerror ratio, counted vs raw window (worst relative difference over SLOs, regions, last day)")
    print(f"{'window':<8} {'on the hour':>12} {'half past vs hour':>18} {'half past vs now':>17}")
    for window, (on_hour, edge, now) in acc.items():
        print(f"{window:<8} {on_hour:>12.2e} {edge:>18.2e} {now:>17.2e}")
    ratio = med[GROUP_OLD] / new
    worst = max(max(on_hour, edge) for on_hour, edge, _ in acc.values())
    print(f"\nRESULT long_window_cost_ratio={ratio:.1f} max_rel_diff={worst:.2e}")


if __name__ == "__main__":
    main()
