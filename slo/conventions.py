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
LABEL_STAGE: Final = "stage"  # stream self-metrics: "1" or "2"
# Label names a spec's extra dimension (slo.model.Dimension) may not take: ours
# above, and those Prometheus and Alertmanager attach themselves.
RESERVED_LABELS: Final = frozenset({
    LABEL_REGION, LABEL_SLI, LABEL_KIND, LABEL_QUANTILE, LABEL_WINDOW, LABEL_SLO,
    LABEL_TIER, LABEL_SEVERITY, LABEL_TRIGGER, LABEL_OUTCOME, LABEL_REASON,
    LABEL_PARTITION, LABEL_EXPORTER, LABEL_LE, LABEL_STAGE,
    "job", "instance", "alertname",
})

# --- Label values -------------------------------------------------------------
KIND_RUM: Final = "rum"
KIND_PROBE: Final = "probe"
KINDS: Final = (KIND_RUM, KIND_PROBE)
REGION_OTHER: Final = "other"

SLI_TTFF: Final = "ttff"
SLI_INTERACTION: Final = "interaction_rtt"
SLI_LIVE_LATENCY: Final = "live_latency"
SLI_ERRORS: Final = "errors"
SLI_EXITS_BEFORE_START: Final = "exits_before_start"
SLI_REBUFFERING: Final = "rebuffering"
# SLIs by kind (slo.model.sli_kind): a latency SLI is judged on a quantile of
# its values, a ratio SLI on bad / total events (errors / attempts, exits /
# attempts), a time ratio on bad / total seconds (stall / (stall + played)).
LATENCY_SLIS: Final = (SLI_TTFF, SLI_INTERACTION, SLI_LIVE_LATENCY)
RATIO_SLIS: Final = (SLI_ERRORS, SLI_EXITS_BEFORE_START)
TIME_RATIO_SLIS: Final = (SLI_REBUFFERING,)
SLIS: Final = (*LATENCY_SLIS, *RATIO_SLIS, *TIME_RATIO_SLIS)
SLI_KIND_LATENCY: Final = "latency"
SLI_KIND_RATIO: Final = "ratio"
SLI_KIND_TIME_RATIO: Final = "time_ratio"

# Beacon event types: first_frame feeds ttff, interaction feeds interaction_rtt,
# live_latency feeds live_latency; a play attempt ends in a first_frame, a fatal
# error or an exit_before_start (the attempts of the errors and
# exits_before_start SLIs); stall and playing feed rebuffering.
EVENT_FIRST_FRAME: Final = "first_frame"
EVENT_INTERACTION: Final = "interaction"
EVENT_ERROR: Final = "error"
# A play attempt abandoned before its first frame (value_ms = how long the viewer waited).
EVENT_EXIT_BEFORE_START: Final = "exit_before_start"
EVENT_STALL: Final = "stall"  # value_ms = one rebuffering episode, sent when it ends
EVENT_PLAYING: Final = "playing"  # value_ms = time played since the previous heartbeat
EVENT_LIVE_LATENCY: Final = "live_latency"  # value_ms = distance behind the live edge

# Classes of an `error` event: fatal counts against the SLO (an attempt and an
# error), warning is counted apart and is no SLO error, business (geo-block,
# entitlement, concurrency limit) is neither an attempt nor an error.
ERROR_CLASS_FATAL: Final = "fatal"
ERROR_CLASS_WARNING: Final = "warning"
ERROR_CLASS_BUSINESS: Final = "business"
ERROR_CLASSES: Final = (ERROR_CLASS_FATAL, ERROR_CLASS_WARNING, ERROR_CLASS_BUSINESS)

# Quantiles exported by the in-stream sketches.
EXPORTED_QUANTILES: Final = (0.5, 0.9, 0.95, 0.99)

# --- Pipeline metrics ------------------------------------------------------
# prometheus_client appends suffixes itself (_bucket, _count, _total on
# counters), so the *_BASE names below are what you pass to the client and the
# unsuffixed ones are what PromQL sees.
METRIC_LATENCY: Final = "streamslo_latency_seconds"
METRIC_LATENCY_BUCKET: Final = "streamslo_latency_seconds_bucket"
METRIC_LATENCY_COUNT: Final = "streamslo_latency_seconds_count"
METRIC_LATENCY_SUM: Final = "streamslo_latency_seconds_sum"
METRIC_LATENCY_QUANTILE: Final = "streamslo_latency_quantile_seconds"
# Playback outcomes, labels {region, kind} plus the spec's dimension label when
# the SLI opts in. Attempts = first frames + fatal errors + exits before start.
METRIC_ATTEMPTS: Final = "streamslo_playback_attempts_total"
METRIC_ERRORS: Final = "streamslo_playback_errors_total"
METRIC_EXITS_BEFORE_START: Final = "streamslo_playback_exits_before_start_total"
METRIC_WARNINGS: Final = "streamslo_playback_warnings_total"
METRIC_BUSINESS_ERRORS: Final = "streamslo_playback_business_errors_total"
# Rebuffering: sum of stall durations, sum of playing heartbeats, count of stalls.
METRIC_REBUFFER_SECONDS: Final = "streamslo_rebuffer_seconds_total"
METRIC_PLAYED_SECONDS: Final = "streamslo_played_seconds_total"
METRIC_REBUFFER_EVENTS: Final = "streamslo_rebuffer_events_total"
# Gauge {region, slo, window}: bad / total of every ratio and time_ratio SLO over
# each quantile window and the period; absent while total is 0.
METRIC_SLI_RATIO: Final = "streamslo_sli_ratio"
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

# Reasons of streamslo_collector_refused_total (a small fixed set; see docs/collector.md).
REASON_MALFORMED: Final = "malformed"  # 400: not JSON, bad gzip, wrong encoding
REASON_INVALID: Final = "invalid"  # 422: schema, type or range violation
REASON_TOO_LARGE: Final = "too_large"  # 413: body over the cap (after decompression)
REASON_TOO_MANY_EVENTS: Final = "too_many_events"  # 422: events per beacon over the cap
REASON_EVENT_TOO_OLD: Final = "event_too_old"  # 422: corrected event time too far back
REASON_EVENT_IN_FUTURE: Final = "event_in_future"  # 422: corrected event time ahead
REASON_UNAUTHORIZED: Final = "unauthorized"  # 401: missing or unknown ingest key
REASON_RATE_LIMITED: Final = "rate_limited"  # 429: the key's token bucket is empty
REASON_UNSUPPORTED_MEDIA: Final = "unsupported_media_type"  # 415: content type/encoding
REFUSAL_REASONS: Final = (
    REASON_MALFORMED,
    REASON_INVALID,
    REASON_TOO_LARGE,
    REASON_TOO_MANY_EVENTS,
    REASON_EVENT_TOO_OLD,
    REASON_EVENT_IN_FUTURE,
    REASON_UNAUTHORIZED,
    REASON_RATE_LIMITED,
    REASON_UNSUPPORTED_MEDIA,
)

# --- Recording rules (Sloth's shape, own namespace) ----------------------------
# `streamslo:`, not Sloth's `slo:`: our label schema differs from Sloth's
# (per-region series, no sloth_id/sloth_service), so one Prometheus running both
# must never mix the two families (docs/alerting.md, "Record names").
RECORD_NAMESPACE: Final = "streamslo"
RECORD_SLI_ERROR_PREFIX: Final = "streamslo:sli_error:ratio_rate"
RECORD_OBJECTIVE: Final = "streamslo:objective:ratio"
RECORD_ERROR_BUDGET: Final = "streamslo:error_budget:ratio"
RECORD_BURN_RATE_PREFIX: Final = "streamslo:burn_rate:ratio_rate"
RECORD_BUDGET_REMAINING: Final = "streamslo:period_error_budget_remaining:ratio"
RECORD_EVENTS_PREFIX: Final = "streamslo:sli_events:count"
# Long windows from recorded counts: bad and total SLI events per recording
# interval, summed over the window (alerts/long_windows.py).
RECORD_BAD_INCREASE_PREFIX: Final = "streamslo:sli_bad_events:increase"
RECORD_TOTAL_INCREASE_PREFIX: Final = "streamslo:sli_events:increase"
GROUP_SLI_COUNTS: Final = "streamslo-sli-counts"
GROUP_SLI_LONG_WINDOWS: Final = "streamslo-sli-long-windows"

# --- Rule groups --------------------------------------------------------------
GROUP_SLI_RECORDINGS: Final = "streamslo-sli-recordings"
GROUP_META_RECORDINGS: Final = "streamslo-meta-recordings"
GROUP_BURN_ALERTS: Final = "streamslo-burn-rate-alerts"
GROUP_TRIGGER_ALERTS: Final = "streamslo-operational-triggers"
GROUP_PIPELINE_ALERTS: Final = "streamslo-pipeline-health"

# --- Alert names --------------------------------------------------------------
ALERT_BURN_RATE: Final = "StreamSLOErrorBudgetBurn"
# The default spec's trigger alerts (its `alert:` fields); the generators take
# every trigger alert's name from the spec, never from these.
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


# --- Stream worker: what it skips and survives (docs/reliability.md) ----------
# Records of `beacons` that stage 1 cannot accept (any reason) are copied here
# when the worker runs with --dead-letter; headers `reason` and `source`.
TOPIC_DEAD_LETTER: Final = "streamslo-dead-letter"
# Labels stage ("1" records of beacons, "2" bundles of slo-partials) and reason
# (REASON_MALFORMED, REASON_INVALID, REASON_TOO_LARGE, REASON_TOO_MANY_EVENTS).
METRIC_STREAM_SKIPPED: Final = "streamslo_stream_skipped_records_total"
# Events outside the collector's event-time bounds; label reason
# (REASON_EVENT_TOO_OLD, REASON_EVENT_IN_FUTURE).
METRIC_STREAM_DROPPED_EVENTS: Final = "streamslo_stream_dropped_events_total"
# Stage-1 cuts that failed (commit or produce) and reset their partitions.
METRIC_STREAM_FAILED_CUTS: Final = "streamslo_stream_failed_cuts_total"


# --- Region health and autoscaling (docs/autoscaling-and-failover.md) ----------
# Compacted, key = region, value = slo.health.HealthReport JSON: the owner of a
# region publishes it, every worker reads it, so every worker answers alike.
TOPIC_HEALTH: Final = "slo-health"
HEALTH_PATH: Final = "/v1/regions/{region}/health"
# Health endpoint answers by outcome (HEALTH_OK, HEALTH_BREACH, HEALTH_UNKNOWN_REGION).
METRIC_HEALTH_REQUESTS: Final = "streamslo_health_requests_total"
HEALTH_OK: Final = "ok"
HEALTH_BREACH: Final = "breach"
HEALTH_UNKNOWN_REGION: Final = "unknown_region"
# slo-health records a worker could not decode (skipped).
METRIC_HEALTH_BAD_RECORDS: Final = "streamslo_health_bad_records_total"
# A trigger's worst clause as a ratio to its limit, over the trigger's window
# ({region, trigger}; 1.0 = at the limit); and that ratio held for the
# trigger's `for:` (min over the last `for:`), the one series an HPA reads.
RECORD_TRIGGER_RATIO: Final = "streamslo:trigger_ratio:max"
RECORD_TRIGGER_HELD_PREFIX: Final = "streamslo:trigger_ratio:held"
GROUP_AUTOSCALING_RECORDINGS: Final = "streamslo-autoscaling-recordings"
# The External metric prometheus-adapter serves to the HPA ({region, trigger}).
EXTERNAL_METRIC_TRIGGER: Final = "streamslo_trigger_ratio"


def trigger_held_record(for_window: str) -> str:
    """Recording-rule name for the trigger ratio held over ``for_window`` (``"2m"``)."""
    return f"{RECORD_TRIGGER_HELD_PREFIX}{for_window}"
