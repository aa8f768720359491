"""Problems found in a spec, each with the field path it is about.

Field-level problems (wrong type, out of range) are found while the YAML is
mapped into the model (``slo/spec.py``); the checks here look at the whole
model: duplicate names, window ordering, tiers that could never fire.

>>> from slo.spec import load_spec
>>> spec, problems = load_spec("slo/specs/default.yaml", strict=False)
>>> [str(p) for p in problems if p.is_error]
[]
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from slo.durations import format_duration
from slo.model import TARGET_HPA, Spec


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or suspicious) in a spec, at ``path`` (``slos[1].objectives[0].threshold_ms``)."""

    path: str
    message: str
    severity: Severity = Severity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        return f"{self.severity.value}: {self.path}: {self.message}"


def check_model(spec: Spec) -> list[Problem]:
    """Whole-spec checks on a model whose fields are individually valid."""
    problems: list[Problem] = []
    problems += _check_unique_names(spec)
    problems += _check_tiers(spec)
    problems += _check_windows(spec)
    problems += _check_triggers(spec)
    return problems


def _check_triggers(spec: Spec) -> list[Problem]:
    problems = []
    names: set[str] = set()
    for i, trigger in enumerate(spec.triggers):
        path = f"triggers[{i}]"
        if trigger.name in names:
            problems.append(Problem(f"{path}.name", f"duplicate trigger {trigger.name!r}"))
        names.add(trigger.name)
        if trigger.stale_after_s < spec.pane_s:
            problems.append(
                Problem(
                    f"{path}.stale_after",
                    f"{format_duration(trigger.stale_after_s)} is shorter than the pane "
                    f"({format_duration(spec.pane_s)}): every region would look stale",
                )
            )
        for k, target in enumerate(trigger.targets):
            if target.min_replicas > target.max_replicas:
                problems.append(
                    Problem(f"{path}.targets[{k}].max_replicas", "must be >= min_replicas")
                )
            shared = "{region}" not in target.workload + target.namespace
            if target.kind == TARGET_HPA and shared and len(spec.regions) > 1:
                problems.append(
                    Problem(
                        f"{path}.targets[{k}].namespace",
                        "every region's HPA gets the same name and namespace: use {region} "
                        "in namespace or workload, or apply each region's document to its own cluster",
                        Severity.WARNING,
                    )
                )
    return problems


def _check_unique_names(spec: Spec) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for i, slo in enumerate(spec.slos):
        if slo.name in seen:
            problems.append(Problem(f"slos[{i}]", f"duplicate SLO name {slo.name!r}"))
        seen.add(slo.name)
    tier_names: set[str] = set()
    for i, tier in enumerate(spec.tiers):
        if tier.name in tier_names:
            problems.append(Problem(f"alerting.tiers[{i}].name", f"duplicate tier {tier.name!r}"))
        tier_names.add(tier.name)
    if len(set(spec.regions)) != len(spec.regions):
        problems.append(Problem("regions", "regions must be unique"))
    return problems


def _check_tiers(spec: Spec) -> list[Problem]:
    problems = []
    for i, tier in enumerate(spec.tiers):
        path = f"alerting.tiers[{i}]"
        if tier.short_s >= tier.long_s:
            problems.append(Problem(f"{path}.short", "must be shorter than long"))
        if tier.long_s > spec.period_s:
            problems.append(Problem(f"{path}.long", "must not exceed the period"))
        for slo in spec.slos:
            resolved = spec.resolved_tiers(slo)[i]
            if resolved.adapted:
                problems.append(
                    Problem(
                        f"{path}.factor",
                        f"{tier.factor:g}x can never fire for SLO {slo.name!r} "
                        f"(budget {slo.budget:.4g}, max burn {slo.max_burn_rate:.4g}x); "
                        f"generated rules use {resolved.factor:g}x",
                        Severity.WARNING,
                    )
                )
    return problems


def _check_windows(spec: Spec) -> list[Problem]:
    problems = []
    for i, window in enumerate(spec.quantile_windows_s):
        if window < spec.pane_s:
            problems.append(
                Problem(
                    f"stream.quantile_windows[{i}]",
                    f"{format_duration(window)} is shorter than the pane "
                    f"({format_duration(spec.pane_s)})",
                )
            )
    for i, trigger in enumerate(spec.triggers):
        if trigger.window_s not in spec.quantile_windows_s:
            problems.append(
                Problem(
                    f"triggers[{i}].window",
                    f"{format_duration(trigger.window_s)} is not one of stream.quantile_windows",
                )
            )
    return problems
