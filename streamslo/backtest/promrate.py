"""Prometheus' ``rate()`` and ``increase()`` over per-tick counter samples, vectorised.

Use :func:`increase` to evaluate ``increase(x[w])`` at every tick of a series
scraped once per tick, as Prometheus 2.x computes it
(``promql/functions.go`` ``extrapolatedRate``): the samples in the closed
range ``[t - w, t]``, their difference, extrapolated towards the range's
edges when the first or last sample is within 1.1 average intervals of
them (else by half an interval), and never below zero for a counter
(``durationToZero``). The backtest evaluates the generated burn-rate rules
with it, so its fire times are those of the rules, not of the engine's own
event-time windows.

Assumes what a scrape of the engine gives: a sample at every tick from the
series' first appearance on (NaN before it), counters that never reset.

>>> import numpy as np
>>> t = np.arange(0.0, 5.0)
>>> increase(t, np.array([np.nan, 0.0, 10.0, 20.0, 30.0]), 2.0).tolist()[2:]
[10.0, 20.0, 20.0]
"""

from __future__ import annotations

import numpy as np

__all__ = ["increase", "rate"]


def increase(t: np.ndarray, values: np.ndarray, window_s: float) -> np.ndarray:
    """``increase(values[window_s])`` at every tick (NaN with fewer than two samples)."""
    n = t.size
    out = np.full(n, np.nan)
    present = np.flatnonzero(~np.isnan(values))
    if n == 0 or present.size < 2:
        return out
    first_present = present[0]
    # Closed range [t - w, t]: the first tick index at or after t - w (1e-9: float ticks).
    lo = np.searchsorted(t, t - window_s - 1e-9, side="left")
    first = np.maximum(lo, first_present)
    idx = np.arange(n)
    ok = idx - first >= 1
    first, last = first[ok], idx[ok]
    t_first, t_last = t[first], t[last]
    v_first, v_last = values[first], values[last]
    result = v_last - v_first
    sampled = t_last - t_first
    avg = sampled / (last - first)
    to_start = t_first - (t[last] - window_s)
    to_end = np.zeros_like(sampled)  # the last sample is at the evaluation instant
    with np.errstate(divide="ignore", invalid="ignore"):
        to_zero = np.where((result > 0) & (v_first >= 0), sampled * (v_first / result), np.inf)
    to_start = np.minimum(to_start, to_zero)
    threshold = avg * 1.1
    interval = sampled + np.where(to_start < threshold, to_start, avg / 2) + np.where(to_end < threshold, to_end, avg / 2)
    out[ok] = result * (interval / sampled)
    return out


def rate(t: np.ndarray, values: np.ndarray, window_s: float) -> np.ndarray:
    """``rate(values[window_s])``: :func:`increase` per second of the window."""
    return increase(t, values, window_s) / window_s
