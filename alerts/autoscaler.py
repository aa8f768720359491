"""Kubernetes autoscaling objects from the spec's ``hpa`` targets: adapter rules, HPA, KEDA.

Use :func:`adapter_config_map`, :func:`hpa_documents` and
:func:`keda_documents`; ``streamslo/generate.py`` writes them under
``kubernetes/``. Every object reads one series per region, the held trigger
ratio of ``alerts/trigger_signal.py`` (``streamslo:trigger_ratio:held2m``), which
already encodes the trigger's window and ``for:``.

How the numbers are chosen (``docs/autoscaling-and-failover.md``):

- the HPA's metric target is ``Value`` ``910m``: the HPA acts only when
  ``value / target`` leaves ``1 ± tolerance`` (10 % by default), so a target
  of ``1 / 1.1`` (rounded up to 0.91) makes "ratio above 1.001" the first
  value that scales up, i.e. the trigger's own limit;
- ``behavior.scaleUp.stabilizationWindowSeconds`` is 0: ``for:`` is already
  in the series, a window here would count it twice;
- ``behavior.scaleDown.stabilizationWindowSeconds`` is the trigger's
  ``recover_for`` clamped to 5-10 minutes, then at most 10 % of the pods per minute.

>>> from slo.spec import load_spec
>>> spec, _ = load_spec()
>>> target_value(0.1)
'910m'
"""

from __future__ import annotations

import math
from typing import Any

from alerts import trigger_signal
from alerts.yamlout import dump
from slo import conventions as c
from slo.hpa import DEFAULT_TOLERANCE
from slo.model import TARGET_HPA, Spec, Target, Trigger

__all__ = [
    "DEFAULT_TOLERANCE",
    "adapter_config_map",
    "behavior",
    "external_metric",
    "hpa",
    "hpa_documents",
    "keda_documents",
    "target_value",
]

SCALE_DOWN_MIN_S, SCALE_DOWN_MAX_S = 300, 600
MANAGED_BY = {"app.kubernetes.io/managed-by": "streamslo"}
LABEL_REGION = "streamslo.dev/region"
LABEL_TRIGGER = "streamslo.dev/trigger"


def external_metric(trigger: Trigger) -> str:
    """The External metric name the adapter serves for ``trigger`` (``streamslo_trigger_ratio_scale_out``)."""
    return f"{c.EXTERNAL_METRIC_TRIGGER}_{trigger.name.replace('-', '_').replace('.', '_')}"


def target_value(tolerance: float = DEFAULT_TOLERANCE) -> str:
    """The HPA target (a quantity in milli-units) at which the trigger's limit is the first value to scale."""
    return f"{math.ceil(1000 / (1 + tolerance))}m"


def behavior(trigger: Trigger) -> dict[str, Any]:
    """``spec.behavior``: immediate scale-up (for: is in the query), damped scale-down."""
    down = int(min(SCALE_DOWN_MAX_S, max(SCALE_DOWN_MIN_S, trigger.recover_for_s)))
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": 60},
                {"type": "Pods", "value": 4, "periodSeconds": 60},
            ],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": down,
            "selectPolicy": "Min",
            "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}],
        },
    }


def _metadata(target: Target, trigger: Trigger, region: str, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": target.for_region(target.namespace, region),
        "labels": {**MANAGED_BY, LABEL_REGION: region, LABEL_TRIGGER: trigger.name},
    }


def hpa(trigger: Trigger, target: Target, region: str) -> dict[str, Any]:
    """One ``autoscaling/v2`` HorizontalPodAutoscaler for one region."""
    workload = target.for_region(target.workload, region)
    selector = {c.LABEL_REGION: region, c.LABEL_TRIGGER: trigger.name}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(target, trigger, region, workload),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": workload},
            "minReplicas": target.min_replicas,
            "maxReplicas": target.max_replicas,
            "metrics": [{
                "type": "External",
                "external": {
                    "metric": {"name": external_metric(trigger), "selector": {"matchLabels": selector}},
                    "target": {"type": "Value", "value": target_value()},
                },
            }],
            "behavior": behavior(trigger),
        },
    }


def keda(trigger: Trigger, target: Target, region: str, prometheus_url: str) -> dict[str, Any]:
    """The KEDA ScaledObject equivalent to :func:`hpa` (Prometheus scaler, ``metricType: Value``)."""
    workload = target.for_region(target.workload, region)
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _metadata(target, trigger, region, workload),
        "spec": {
            "scaleTargetRef": {"name": workload},
            "pollingInterval": 15,
            "minReplicaCount": target.min_replicas,
            "maxReplicaCount": target.max_replicas,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": behavior(trigger)}},
            "triggers": [{
                "type": "prometheus",
                "metricType": "Value",
                "metadata": {
                    "serverAddress": prometheus_url,
                    "query": f"max({trigger_signal.held_selector(trigger, region)})",
                    "threshold": f"{int(target_value()[:-1]) / 1000:g}",
                },
            }],
        },
    }


def _scaled(spec: Spec) -> list[tuple[Trigger, Target]]:
    return [(t, tg) for t in trigger_signal.scaled_triggers(spec) for tg in t.targets_of(TARGET_HPA)]


def hpa_documents(spec: Spec) -> dict[str, list[dict[str, Any]]]:
    """``{workload template: [one HPA per region]}``, for ``kubernetes/hpa-<workload>.yaml``."""
    out: dict[str, list[dict[str, Any]]] = {}
    for trigger, target in _scaled(spec):
        docs = out.setdefault(target.workload.replace("{region}", "region"), [])
        docs += [hpa(trigger, target, region) for region in spec.regions]
    return out


def keda_documents(spec: Spec, prometheus_url: str) -> list[dict[str, Any]]:
    """Every ScaledObject, one per (hpa target, region), for ``kubernetes/keda-scaledobject.yaml``."""
    return [keda(t, tg, region, prometheus_url) for t, tg in _scaled(spec) for region in spec.regions]


def adapter_rules(spec: Spec) -> dict[str, Any]:
    """prometheus-adapter's ``config.yaml``: one ``externalRules`` entry per scaled trigger."""
    rules = []
    for trigger in trigger_signal.scaled_triggers(spec):
        record = trigger_signal.held_record(trigger)
        rules.append({
            "seriesQuery": f'{{__name__="{record}",{c.LABEL_TRIGGER}="{trigger.name}"}}',
            # The series carry no namespace: an HPA in any namespace may read them.
            "resources": {"namespaced": False},
            "name": {"matches": f"^{record}$", "as": external_metric(trigger)},
            "metricsQuery": f"max(<<.Series>>{{<<.LabelMatchers>>}}) by ({c.LABEL_REGION}, {c.LABEL_TRIGGER})",
        })
    return {"externalRules": rules}


def adapter_config_map(spec: Spec, header: str, namespace: str = "monitoring") -> dict[str, Any]:
    """The ConfigMap prometheus-adapter mounts as ``config.yaml``."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "prometheus-adapter", "namespace": namespace, "labels": dict(MANAGED_BY)},
        "data": {"config.yaml": dump(adapter_rules(spec), f"# {header}")},
    }
