"""Long windows (1d, 3d, 30d) from recorded counts, cheap and exact up to the recording interval.

Use :func:`is_counted` to ask whether a window is built this way,
:func:`counts_group` for the hourly count records and :func:`error_ratio` /
:func:`events` for the long-window expressions ``alerts/recording.py`` writes.

A raw ``rate(x[30d])`` reads every sample of every bucket series for 30 days
on every evaluation. Instead, a group evaluated every :data:`INTERVAL_S` (1h)
records the bad and total events of that hour per SLO and region
(``streamslo:sli_bad_events:increase1h``, ``streamslo:sli_events:increase1h``),
and a long window sums the last ``window / 1h`` of them::

    sum_over_time(last_over_time(bad[59m59s999ms])[29d23h59m59s999ms:1h])

The subquery takes one point per aligned hour, and ``last_over_time`` the
latest count of the hour before it: exactly one count per hour whether the
count group ran once that hour (Prometheus honours ``interval: 1h``) or at
every step (promtool's unit tests ignore group intervals). Both ranges are
one millisecond short (2.42's ranges are closed at both ends): an evaluation
on the hour takes ``window / 1h`` points, not one more, and an hour whose
count evaluation was missed counts nothing rather than the previous hour twice.

Edge error: the sum covers exactly ``window`` of events, ending at the count
evaluation at or before the last full hour, so up to two intervals (2h)
before now in Prometheus (one in promtool, where evaluations fall on the
hour); a window that ends on a count evaluation equals the raw window.

>>> is_counted(86400), is_counted(3600)
(True, False)
"""

from __future__ import annotations

from typing import Any

from slo import conventions as c
from slo import promql
from slo.durations import format_duration
from slo.model import SLO, Spec

__all__ = ["INTERVAL_S", "MIN_WINDOW_S", "counts_group", "error_ratio", "events", "is_counted"]

# Recording interval of the counts: a 30d window sums 720 of them.
INTERVAL_S = 3600
# Windows from 1d up are built from counts; shorter ones read raw samples
# (they are cheap, and an alert on them must not lag by an hour).
MIN_WINDOW_S = 86400

Group = dict[str, Any]


def is_counted(window_s: float) -> bool:
    """Whether a window is summed from recorded counts (>= 1d, whole hours)."""
    return window_s >= MIN_WINDOW_S and window_s % INTERVAL_S == 0


def _interval() -> str:
    return format_duration(INTERVAL_S)


def bad_record() -> str:
    return f"{c.RECORD_BAD_INCREASE_PREFIX}{_interval()}"


def total_record() -> str:
    return f"{c.RECORD_TOTAL_INCREASE_PREFIX}{_interval()}"


def counts_group(spec: Spec, labels_of: dict[str, dict[str, str]]) -> Group:
    """The hourly bad/total counts of every SLO (empty when no window is counted).

    ``labels_of`` maps an SLO name to the labels its records carry.
    """
    if not any(is_counted(w) for w in spec.alert_windows_s):
        return {"name": c.GROUP_SLI_COUNTS, "interval": _interval(), "rules": []}
    kind, window = spec.evaluate_kind, _interval()
    rules = []
    for slo in sorted(spec.slos, key=lambda s: s.name):
        bad = promql.sli_bad(slo, promql.increase, window, kind)
        total = promql.sli_total(slo.sli, promql.increase, window, kind)
        rules.append({"record": bad_record(), "expr": bad, "labels": labels_of[slo.name]})
        rules.append({"record": total_record(), "expr": total, "labels": labels_of[slo.name]})
    return {"name": c.GROUP_SLI_COUNTS, "interval": _interval(), "rules": rules}


def _summed(record: str, slo: SLO, window_s: float) -> str:
    """``sum_over_time`` of one count per aligned hour over the window (see the module doc)."""
    series = promql.selector(record, **{c.LABEL_SLO: slo.name})
    return f"sum_over_time(last_over_time({series}[{_just_under(INTERVAL_S)}])[{_just_under(window_s)}:{_interval()}])"


def _just_under(seconds: float) -> str:
    """``seconds`` minus one millisecond (``59m59s999ms``): 2.42's ranges are closed at both ends."""
    return f"{format_duration(seconds - 1)}999ms"


def error_ratio(slo: SLO, window_s: float) -> str:
    """Bad / all events of ``slo`` per region over a counted window."""
    bad, total = _summed(bad_record(), slo, window_s), _summed(total_record(), slo, window_s)
    # The records carry slo/sli labels; divide on region alone so the result
    # holds only what the rule's labels add back.
    return f"sum by ({c.LABEL_REGION}) ({bad})\n/\nsum by ({c.LABEL_REGION}) ({total})"


def events(slo: SLO, window_s: float) -> str:
    """Events of ``slo`` per region over a counted window (the low-traffic guard)."""
    return f"sum by ({c.LABEL_REGION}) ({_summed(total_record(), slo, window_s)})"
