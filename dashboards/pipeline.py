"""The pipeline-health dashboard: ingest accepted/refused, lag, freshness, stage latency.

Use :func:`dashboard` to get the JSON dict. Self-telemetry metrics only; the
names come from ``slo/conventions.py``.

>>> from slo.spec import load_spec
>>> spec, _ = load_spec()
>>> dashboard(spec, "generated")["uid"]
'streamslo-pipeline-health'
"""

from __future__ import annotations

from typing import Any

from dashboards import panels as p
from slo import conventions as c
from slo import promql
from slo.model import Spec

__all__ = ["UID", "dashboard"]

UID = "streamslo-pipeline-health"


def _rate_by(metric: str, label: str, window: str = "1m") -> str:
    return f"sum by ({label}) (rate({metric}[{window}]))"


def dashboard(spec: Spec, generated_by: str) -> dict[str, Any]:
    """The pipeline-health dashboard JSON for ``spec``."""
    region_var = [p.region_template(c.METRIC_STREAM_FRESHNESS, spec.region_labels)]
    panels: list[Any] = [
        p.row("Ingest"),
        p.timeseries(
            "Beacons by outcome",
            "Beacons the collector accepted, refused or failed to export, per second.",
            [(_rate_by(c.METRIC_COLLECTOR_BEACONS, c.LABEL_OUTCOME), f"{{{{{c.LABEL_OUTCOME}}}}}")],
            "reqps",
        ),
        p.timeseries(
            "Refused beacons by reason",
            "Why beacons were refused (invalid, unauthorized, too large, rate limited, unavailable).",
            [(_rate_by(c.METRIC_COLLECTOR_REFUSED, c.LABEL_REASON), f"{{{{{c.LABEL_REASON}}}}}")],
            "reqps",
        ),
        p.timeseries(
            "Collector request latency",
            "p50 and p99 of POST /v1/beacons handling time.",
            [
                (
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate({c.METRIC_COLLECTOR_REQUEST_DURATION}_bucket[5m])))",
                    f"p{q * 100:g}",
                )
                for q in (0.5, 0.99)
            ],
            "s",
        ),
        p.timeseries(
            "Events by outcome",
            "Beacon events accepted and rejected (too old, too new, invalid) per second.",
            [(_rate_by(c.METRIC_COLLECTOR_EVENTS, c.LABEL_OUTCOME), f"{{{{{c.LABEL_OUTCOME}}}}}")],
            "ops",
        ),
        p.row("Stream"),
        p.timeseries(
            "Freshness",
            "Age of the newest data in the published windows, per region (pane + flush).",
            [(promql.region_selector(c.METRIC_STREAM_FRESHNESS), f"{{{{{c.LABEL_REGION}}}}}")],
            "s",
        ),
        p.timeseries(
            "Consumer lag",
            "Records behind per partition (0 in the embedded pipeline).",
            [(f"sum by ({c.LABEL_PARTITION}) ({c.METRIC_STREAM_LAG})", f"partition {{{{{c.LABEL_PARTITION}}}}}")],
            "short",
        ),
        p.timeseries(
            "Duplicates and late events",
            "Beacons dropped as retries of a counted (session, seq), and events too late for their pane.",
            [
                (f"sum(rate({c.METRIC_STREAM_DUPLICATES}[1m]))", "duplicate beacons"),
                (f"sum(rate({c.METRIC_STREAM_LATE_EVENTS}[1m]))", "late events"),
            ],
            "ops",
        ),
    ]
    return p.board(
        UID,
        f"streamslo: pipeline health ({spec.name})",
        generated_by,
        ["streamslo", "pipeline", "generated"],
        panels,
        region_var,
    )
