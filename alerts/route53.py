"""Route 53 health checks from the spec's ``route53`` targets: one per region.

Use :func:`health_checks` for ``route53/health-checks.json``: each entry is a
``HealthCheckConfig`` for ``aws route53 create-health-check`` (plus the
``CallerReference`` it needs), string-matching ``SLO_OK`` at the region's
``/v1/regions/{region}/health`` over HTTPS every 10 s.

The endpoint already waits for the trigger's ``for:`` before it answers
``SLO_BREACH``, so Route 53's ``FailureThreshold`` only has to ride out a
lost request: it is 10 % of ``for:`` in 10 s checks (1 to 10). Detection is
then ``for: + FailureThreshold x 10 s`` (5 min 30 s for ``for: 5m``), about
``for:``; recovery is ``recover_for + FailureThreshold x 10 s``.

>>> failure_threshold(300.0)
3
"""

from __future__ import annotations

from typing import Any

from slo import conventions as c
from slo.model import TARGET_ROUTE53, Spec, Target, Trigger

__all__ = ["REQUEST_INTERVAL_S", "detection_s", "failure_threshold", "health_check", "health_checks"]

REQUEST_INTERVAL_S = 10  # "fast" checks; Route 53 allows 10 or 30
PORT = 443


def failure_threshold(for_s: float) -> int:
    """Consecutive failures before Route 53 calls the region unhealthy: 10 % of ``for:``, 1..10."""
    return max(1, min(10, round(0.1 * for_s / REQUEST_INTERVAL_S)))


def detection_s(trigger: Trigger) -> float:
    """Seconds from the condition starting to hold to Route 53 calling the region unhealthy."""
    return trigger.for_s + failure_threshold(trigger.for_s) * REQUEST_INTERVAL_S


def health_check(spec: Spec, trigger: Trigger, target: Target, region: str) -> dict[str, Any]:
    """One region's health check (``HealthCheckConfig`` plus bookkeeping)."""
    return {
        "Region": region,
        "Trigger": trigger.name,
        "CallerReference": f"streamslo-{spec.name}-{trigger.name}-{region}",
        "DetectionSeconds": detection_s(trigger),
        "HealthCheckConfig": {
            "Type": "HTTPS_STR_MATCH",
            "FullyQualifiedDomainName": target.for_region(target.fqdn, region),
            "Port": PORT,
            "ResourcePath": c.HEALTH_PATH.format(region=region),
            "SearchString": "SLO_OK",
            "RequestInterval": REQUEST_INTERVAL_S,
            "FailureThreshold": failure_threshold(trigger.for_s),
            "EnableSNI": True,
            "MeasureLatency": False,
            "Inverted": False,
        },
    }


def health_checks(spec: Spec) -> dict[str, Any]:
    """Every region's health check for every trigger with a ``route53`` target."""
    checks = [
        health_check(spec, trigger, target, region)
        for trigger in spec.triggers
        for target in trigger.targets_of(TARGET_ROUTE53)
        for region in spec.regions
    ]
    return {"HealthChecks": checks}
