"""Counted long windows (1d and up) as the generated rules build them, at every backtest tick.

Use :func:`counted_sum` for a window that ``alerts.long_windows.is_counted``:
the generated rules do not ``rate()`` such a window over raw samples; a group
evaluated every hour records each hour's ``increase(x[1h])``, and the window
is ``sum_over_time(last_over_time(count[1h - 1ms])[window - 1ms:1h])``: one
count per aligned hour ``H`` in ``[t - window + 1ms, t]``, the latest count
recorded in ``[H - 1h + 1ms, H]`` (``alerts/long_windows.py``).

The backtest runs the hourly group at the first evaluation tick at or after
each aligned hour (Prometheus picks a fixed phase of its own; this is phase
zero). The window therefore lags the raw one by up to an hour, as it does in
Prometheus.

>>> import numpy as np
>>> t = np.arange(0.0, 4 * 3600 + 1, 600.0)       # ticks every 10 min for 4 h
>>> hourly = np.where(t >= 3600, 60.0, np.nan)      # 60 events in every hour
>>> float(counted_sum(t, hourly, 2 * 3600)[-1])     # two whole hours
120.0
"""

from __future__ import annotations

import numpy as np

from alerts.long_windows import INTERVAL_S

__all__ = ["counted_sum"]

_MS = 1e-3


def counted_sum(t_abs: np.ndarray, hourly: np.ndarray, window_s: float) -> np.ndarray:
    """The window's sum at every tick; ``hourly`` is ``increase(x[1h])`` at every tick (NaN: absent)."""
    out = np.full(t_abs.size, np.nan)
    if t_abs.size == 0:
        return out
    first_h = np.ceil(t_abs[0] / INTERVAL_S) * INTERVAL_S
    hours = np.arange(first_h, t_abs[-1] + INTERVAL_S, INTERVAL_S)
    # The count group's evaluations: the first tick at or after each aligned hour.
    runs = np.unique(np.searchsorted(t_abs, hours, side="left"))
    runs = runs[runs < t_abs.size]
    run_t, run_v = t_abs[runs], hourly[runs]
    present = ~np.isnan(run_v)
    run_t, run_v = run_t[present], run_v[present]
    if run_t.size == 0:
        return out  # never any count: the window has no sample (the SLO saw no data)
    # last_over_time(count[1h - 1ms]) at each aligned hour H.
    j = np.searchsorted(run_t, hours, side="right") - 1
    ok = (j >= 0) & (run_t[np.maximum(j, 0)] > hours - INTERVAL_S + _MS)
    sel = np.where(ok, run_v[np.maximum(j, 0)], 0.0)
    cum = np.concatenate([[0.0], np.cumsum(sel)])
    cnt = np.concatenate([[0], np.cumsum(ok)])
    # Subquery points: aligned hours in [t - window + 1ms, t].
    lo = np.searchsorted(hours, t_abs - window_s + _MS, side="left")
    hi = np.searchsorted(hours, t_abs, side="right")
    n = cnt[hi] - cnt[lo]
    out[n > 0] = (cum[hi] - cum[lo])[n > 0]
    return out
