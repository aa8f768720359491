"""A transcription of the Kubernetes HPA controller for one External ``Value`` metric.

Use :class:`Hpa` to predict the replicas an ``autoscaling/v2``
HorizontalPodAutoscaler would set from a metric series: the HPA object's
``spec`` configures it (``minReplicas``, ``maxReplicas``, the External
target ``value`` and ``behavior``), :meth:`Hpa.sync` is one reconcile of
``pkg/controller/podautoscaler`` (replica calculator with the tolerance,
stabilization windows, scaling policies and ``selectPolicy``). The backtest
drives it every 15 s (the controller's default sync period) and
``tests/test_hpa_model.py`` checks it against a real Prometheus.

Pure: no Kubernetes client, no I/O.

Example::

    hpa = Hpa(hpa_object["spec"], replicas=3)   # the generated HPA: target 910m
    hpa.sync(0.0, 0.8)      # 3: within the tolerance of the target
    hpa.sync(15.0, 1.5)     # 5: ceil(1.5 / 0.91 x 3), within the scale-up policies
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_TOLERANCE", "SYNC_PERIOD_S", "Hpa"]

# kube-controller-manager's --horizontal-pod-autoscaler-tolerance and --horizontal-pod-autoscaler-sync-period.
DEFAULT_TOLERANCE = 0.1
SYNC_PERIOD_S = 15.0


@dataclass
class Hpa:
    """The HPA controller for one External ``Value`` metric, from an HPA object's ``spec``."""

    spec: dict[str, Any]
    replicas: int
    tolerance: float = DEFAULT_TOLERANCE
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    up_events: list[tuple[float, int]] = field(default_factory=list)
    down_events: list[tuple[float, int]] = field(default_factory=list)

    @property
    def target(self) -> float:
        value = self.spec["metrics"][0]["external"]["target"]["value"]
        return int(value[:-1]) / 1000 if value.endswith("m") else float(value)

    def desired_from_metric(self, value: float) -> int:
        """replica_calculator.go getUsageRatioReplicaCount (all pods ready)."""
        ratio = value / self.target
        if abs(1.0 - ratio) <= self.tolerance:
            return self.replicas
        return math.ceil(ratio * self.replicas)

    def sync(self, now: float, value: float | None) -> int:
        """One reconcile: a missing metric leaves the replicas alone (ScalingActive false)."""
        if value is None:
            return self.replicas
        desired = self.desired_from_metric(value)
        lo, hi = self.spec["minReplicas"], self.spec["maxReplicas"]
        desired = max(lo, min(hi, desired))
        stabilized = self._stabilize(now, desired)
        final = self._rate_limit(now, stabilized)
        if final > self.replicas:
            self.up_events.append((now, final - self.replicas))
        elif final < self.replicas:
            self.down_events.append((now, self.replicas - final))
        self.replicas = final
        return final

    def _stabilize(self, now: float, desired: int) -> int:
        up, down = self.spec["behavior"]["scaleUp"], self.spec["behavior"]["scaleDown"]
        if desired >= self.replicas:
            window, better = up["stabilizationWindowSeconds"], min
        else:
            window, better = down["stabilizationWindowSeconds"], max
        keep = max(up["stabilizationWindowSeconds"], down["stabilizationWindowSeconds"])
        recommendation = desired
        for t, rec in self.recommendations:
            if t > now - window:
                recommendation = better(rec, recommendation)
        self.recommendations = [(t, r) for t, r in self.recommendations if t >= now - keep]
        self.recommendations.append((now, desired))
        return recommendation

    def _rate_limit(self, now: float, desired: int) -> int:
        up, down = self.spec["behavior"]["scaleUp"], self.spec["behavior"]["scaleDown"]
        if desired > self.replicas:
            limit = max(self.replicas, self._limit(now, up, self.up_events, +1))
            return min(desired, int(self.spec["maxReplicas"]), limit)
        if desired < self.replicas:
            limit = min(self.replicas, self._limit(now, down, self.down_events, -1))
            return max(desired, int(self.spec["minReplicas"]), limit)
        return desired

    def _limit(self, now: float, rules: dict[str, Any], events: list[tuple[float, int]], sign: int) -> int:
        """calculateScaleUpLimitWithScalingRules / calculateScaleDownLimitWithBehaviors."""
        pick = (max if rules["selectPolicy"] == "Max" else min) if sign > 0 else \
            (min if rules["selectPolicy"] == "Max" else max)
        proposals = []
        for policy in rules["policies"]:
            changed = sum(n for t, n in events if t > now - policy["periodSeconds"])
            start = self.replicas - sign * changed
            if policy["type"] == "Pods":
                proposals.append(start + sign * policy["value"])
            elif sign > 0:
                proposals.append(math.ceil(start * (1 + policy["value"] / 100)))
            else:
                proposals.append(int(start * (1 - policy["value"] / 100)))
        result = int(proposals[0])
        for p in proposals[1:]:
            result = int(pick(result, p))
        return result
