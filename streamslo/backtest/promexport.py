"""Export the series a backtest's engine would have exposed, for promtool to evaluate the rules on.

Use :class:`SeriesExport` as an ``on_tick`` of :func:`streamslo.backtest.run.backtest`:
at every tick it scrapes the engine's ``/metrics`` exposition
(``slo.exposition.EngineCollector`` over stage 2's snapshot, exactly what
Prometheus would scrape) and keeps the series the generated alert rules
read. :meth:`SeriesExport.input_series` writes them in promtool's
``input_series`` notation, one sample per tick (missing samples ``_``), and
:func:`promtool_test` builds a ``promtool test rules`` file that checks
given alerts at given instants. With the tick interval as scrape, rule
evaluation and test interval, promtool then replays what Prometheus would
have evaluated.

Example::

    export = SeriesExport(spec)
    outcome = backtest(spec, path, eval_interval_s=1.0, on_tick=export)
    doc = promtool_test(export, ["rules.yml"], 1.0, checks)
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from alerts import promtool_series as ps
from slo import conventions as c
from slo import promql
from slo.durations import format_duration
from slo.exposition import EngineCollector
from slo.model import Spec
from slo.stage2 import Snapshot, Stage2

__all__ = ["SeriesExport", "promtool_test"]

# The counters the SLI rules read: latency counts and every ratio SLI's bad and total.
_COUNTERS = frozenset({
    c.METRIC_LATENCY_COUNT, c.METRIC_ATTEMPTS, c.METRIC_ERRORS, c.METRIC_EXITS_BEFORE_START,
    c.METRIC_REBUFFER_SECONDS, c.METRIC_PLAYED_SECONDS,
})


class SeriesExport:
    """Per-tick samples of the rules' input series; see the module docstring."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self._snap: Snapshot | None = None
        self.registry = CollectorRegistry()
        self.registry.register(EngineCollector(self._source, spec))
        self.samples: list[dict[str, float]] = []
        self._le = {promql.le_label(s.threshold_s) for s in spec.slos if s.threshold_s is not None}
        self._windows = {format_duration(t.window_s) for t in spec.triggers}

    def _source(self) -> Snapshot:
        assert self._snap is not None
        return self._snap

    def _wanted(self, name: str, labels: dict[str, str]) -> bool:
        if name in _COUNTERS:
            return True
        if name == c.METRIC_LATENCY_BUCKET:
            return labels.get(c.LABEL_LE) in self._le
        if name == c.METRIC_LATENCY_QUANTILE:
            return labels.get(c.LABEL_WINDOW) in self._windows
        return False

    def __call__(self, now: float, stage2: Stage2) -> None:
        self._snap = stage2.snapshot(now)
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(generate_latest(self.registry).decode()):
            for s in family.samples:
                if self._wanted(s.name, dict(s.labels)):
                    out[promql.selector(s.name, **dict(s.labels))] = s.value
        self.samples.append(out)

    def input_series(self) -> list[ps.Series]:
        """promtool ``input_series``: one value per tick, ``_`` where the series was absent."""
        names = sorted({name for s in self.samples for name in s})
        return [
            {"series": name, "values": " ".join(ps.num(s[name]) if name in s else "_" for s in self.samples)}
            for name in names
        ]


def promtool_test(export: SeriesExport, rule_files: list[str], interval_s: float,
                  checks: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``promtool test rules`` document over the exported series with ``alert_rule_test`` ``checks``."""
    step = format_duration(interval_s)
    return {
        "rule_files": rule_files,
        "evaluation_interval": step,
        "group_eval_order": ps.GROUP_ORDER,
        "tests": [{"interval": step, "input_series": export.input_series(), "alert_rule_test": checks}],
    }
