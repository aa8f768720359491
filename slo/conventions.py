"""Every metric, label, topic and rule-group name streamslo uses, in one place.

Rules, dashboards, exposition, docs and tests import these constants instead of
spelling names themselves, so a rename is a one-line change and a reader can go
from a dashboard panel to the function that computes its number in two hops:
panel query -> name here -> ``grep`` for the constant.

Naming follows the Prometheus conventions: base unit seconds, counters end in
``_total``, ratios end in ``_ratio``.
"""

from __future__ import annotations

from typing import Final

# --- Kafka topics -----------------------------------------------------------
TOPIC_BEACONS: Final = "beacons"
TOPIC_PARTIALS: Final = "slo-partials"
FAUST_APP_ID: Final = "streamslo"

# --- Label names ------------------------------------------------------------
LABEL_REGION: Final = "region"
LABEL_SLI: Final = "sli"
LABEL_KIND: Final = "kind"
LABEL_QUANTILE: Final = "quantile"
LABEL_WINDOW: Final = "window"
LABEL_SLO: Final = "slo"
LABEL_TIER: Final = "tier"
LABEL_SEVERITY: Final = "severity"
LABEL_TRIGGER: Final = "trigger"
LABEL_OUTCOME: Final = "outcome"
LABEL_REASON: Final = "reason"
LABEL_PARTITION: Final = "partition"
LABEL_EXPORTER: Final = "exporter"
LABEL_LE: Final = "le"

# --- Label values -------------------------------------------------------------
KIND_RUM: Final = "rum"
KIND_PROBE: Final = "probe"
KINDS: Final = (KIND_RUM, KIND_PROBE)
REGION_OTHER: Final = "other"

SLI_TTFF: Final = "ttff"
SLI_INTERACTION: Final = "interaction_rtt"
SLI_ERRORS: Final = "errors"
LATENCY_SLIS: Final = (SLI_TTFF, SLI_INTERACTION)
SLIS: Final = (SLI_TTFF, SLI_INTERACTION, SLI_ERRORS)

# Beacon event types and the SLI each one feeds.
EVENT_FIRST_FRAME: Final = "first_frame"
EVENT_INTERACTION: Final = "interaction"
EVENT_ERROR: Final = "error"
EVENT_TYPE_TO_SLI: Final = {EVENT_FIRST_FRAME: SLI_TTFF, EVENT_INTERACTION: SLI_INTERACTION}

# Quantiles exported by the in-stream sketches.
EXPORTED_QUANTILES: Final = (0.5, 0.9, 0.95, 0.99)

# --- Pipeline metrics (DESIGN §9) -------------------------------------------
# prometheus_client appends suffixes itself (_bucket, _count, _total on
# counters), so the *_BASE names below are what you pass to the client and the
# unsuffixed ones are what PromQL sees.
METRIC_LATENCY: Final = "streamslo_latency_seconds"
METRIC_LATENCY_BUCKET: Final = "streamslo_latency_seconds_bucket"
METRIC_LATENCY_COUNT: Final = "streamslo_latency_seconds_count"
METRIC_LATENCY_SUM: Final = "streamslo_latency_seconds_sum"
METRIC_LATENCY_QUANTILE: Final = "streamslo_latency_quantile_seconds"
METRIC_ATTEMPTS: Final = "streamslo_playback_attempts_total"
METRIC_ERRORS: Final = "streamslo_playback_errors_total"
METRIC_BURN_RATE: Final = "streamslo_burn_rate"
METRIC_BUDGET_REMAINING: Final = "streamslo_error_budget_remaining_ratio"
METRIC_TRIGGER_ACTIVE: Final = "streamslo_trigger_condition"

# --- Self-telemetry ----------------------------------------------------------
METRIC_COLLECTOR_BEACONS: Final = "streamslo_collector_beacons_total"
METRIC_COLLECTOR_EVENTS: Final = "streamslo_collector_events_total"
METRIC_COLLECTOR_REFUSED: Final = "streamslo_collector_refused_total"
METRIC_COLLECTOR_REQUEST_DURATION: Final = "streamslo_collector_request_duration_seconds"
METRIC_EXPORTER_DURATION: Final = "streamslo_collector_export_duration_seconds"
METRIC_EXPORTER_FAILURES: Final = "streamslo_collector_export_failures_total"
METRIC_STREAM_LAG: Final = "streamslo_stream_lag_records"
METRIC_STREAM_FRESHNESS: Final = "streamslo_stream_freshness_seconds"
METRIC_STREAM_LATE_EVENTS: Final = "streamslo_stream_late_events_total"
METRIC_STREAM_DUPLICATES: Final = "streamslo_stream_duplicate_beacons_total"
METRIC_STREAM_EVENTS: Final = "streamslo_stream_events_total"
METRIC_STREAM_PARTIALS: Final = "streamslo_stream_partials_total"

# Outcomes of streamslo_collector_beacons_total.
OUTCOME_ACCEPTED: Final = "accepted"
OUTCOME_REFUSED: Final = "refused"
OUTCOME_FAILED: Final = "failed"

# --- Recording rules (Sloth's shape) -----------------------------------------
RECORD_SLI_ERROR_PREFIX: Final = "slo:sli_error:ratio_rate"
RECORD_OBJECTIVE: Final = "slo:objective:ratio"
RECORD_ERROR_BUDGET: Final = "slo:error_budget:ratio"
RECORD_BURN_RATE_PREFIX: Final = "slo:burn_rate:ratio_rate"
RECORD_BUDGET_REMAINING: Final = "slo:period_error_budget_remaining:ratio"
RECORD_EVENTS_PREFIX: Final = "slo:sli_events:count"

# --- Rule groups --------------------------------------------------------------
GROUP_SLI_RECORDINGS: Final = "streamslo-sli-recordings"
GROUP_META_RECORDINGS: Final = "streamslo-meta-recordings"
GROUP_BURN_ALERTS: Final = "streamslo-burn-rate-alerts"
GROUP_TRIGGER_ALERTS: Final = "streamslo-operational-triggers"
GROUP_PIPELINE_ALERTS: Final = "streamslo-pipeline-health"

# --- Alert names --------------------------------------------------------------
ALERT_BURN_RATE: Final = "StreamSLOErrorBudgetBurn"
ALERT_SCALE_OUT: Final = "StreamSLOScaleOut"
ALERT_FAILOVER: Final = "StreamSLORegionFailover"
ALERT_NO_DATA: Final = "StreamSLONoData"
ALERT_INGEST_REFUSALS: Final = "StreamSLOIngestRefusalsHigh"
ALERT_CONSUMER_LAG: Final = "StreamSLOConsumerLagGrowing"

SEVERITY_PAGE: Final = "page"
SEVERITY_TICKET: Final = "ticket"


def sli_error_record(window: str) -> str:
    """Recording-rule name for the SLI error ratio over ``window`` (``"5m"``)."""
    return f"{RECORD_SLI_ERROR_PREFIX}{window}"


def burn_rate_record(window: str) -> str:
    """Recording-rule name for the burn rate over ``window``."""
    return f"{RECORD_BURN_RATE_PREFIX}{window}"


def events_record(window: str) -> str:
    """Recording-rule name for the number of SLI events over ``window``."""
    return f"{RECORD_EVENTS_PREFIX}{window}"
