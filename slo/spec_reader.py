"""Reading a parsed spec document into the model, field by field, with every problem's path.

:func:`read_spec` is what :func:`slo.spec.parse_spec` runs; use that (or
:func:`slo.spec.load_spec`). Each ``_read_*`` function reads one part of the
document (``docs/spec.md`` describes them); optional fields take their defaults
from the ``slo/model.py`` dataclasses, never from here.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, TypeVar

from slo import conventions as c
from slo import spec_fields as fields
from slo.model import (
    MAX_DIMENSION_VALUES,
    SLO,
    TARGET_HPA,
    Condition,
    Dimension,
    Spec,
    Target,
    Tier,
    Trigger,
    sli_kind,
)
from slo.validation import Problem

__all__ = ["API_VERSION", "Reader", "read_spec"]

API_VERSION = "streamslo/v1"
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

T = TypeVar("T")


class Reader:
    """Reads typed fields out of nested mappings, recording problems by path."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, "must be a mapping")
            return {}
        return value

    def items(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(path, "must be a list")
            return []
        return value

    def required(
        self, data: dict[str, Any], key: str, path: str, convert: Callable[[Any], T], placeholder: T
    ) -> T:
        """``data[key]`` converted; absent or invalid: a problem, and ``placeholder``.

        The placeholder only keeps a spec with errors constructible; such a spec
        is never used (``parse_spec``).
        """
        if key not in data:
            self.fail(_where(path, key), "is required")
            return placeholder
        return self.optional(data, key, path, convert, placeholder)

    def optional(
        self, data: dict[str, Any], key: str, path: str, convert: Callable[[Any], T], default: T
    ) -> T:
        """``data[key]`` converted; absent: ``default`` (see :func:`_default`); invalid: a problem."""
        if key not in data:
            return default
        try:
            return convert(data[key])
        except (TypeError, ValueError) as exc:
            self.fail(_where(path, key), str(exc))
            return default

    def unknown(self, data: dict[str, Any], known: set[str], path: str) -> None:
        for key in sorted(set(data) - known):
            self.fail(_where(path, key), "unknown field")


def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _default(model: type, attr: str) -> Any:
    """The default of dataclass field ``model.attr``: the spec's defaults live in ``slo/model.py`` only."""
    for f in dataclasses.fields(model):
        if f.name == attr:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
    raise TypeError(f"{model.__name__}.{attr} has no default")


# --- sections ------------------------------------------------------------------

_TOP = {
    "apiVersion", "name", "period", "regions", "evaluate_kind", "stream", "alerting", "slos",
    "triggers", "dimension",
}


def read_spec(r: Reader, raw: Any, source: str) -> Spec:
    top = r.mapping(raw, "<root>")
    if top and top.get("apiVersion") != API_VERSION:
        r.fail("apiVersion", f"must be {API_VERSION!r}")
    r.unknown(top, _TOP, "")
    stream = r.mapping(top.get("stream", {}), "stream")
    r.unknown(stream, {"pane", "allowed_lateness", "quantile_windows"}, "stream")
    alerting = r.mapping(top.get("alerting", {}), "alerting")
    r.unknown(alerting, {"low_traffic_min_events", "tiers"}, "alerting")
    return Spec(
        name=r.required(top, "name", "", fields.name, ""),
        period_s=r.required(top, "period", "", fields.positive_duration, 1.0),
        regions=_read_regions(r, top.get("regions")),
        evaluate_kind=r.optional(top, "evaluate_kind", "", fields.kind, _default(Spec, "evaluate_kind")),
        tiers=tuple(_read_tier(r, t, f"alerting.tiers[{i}]") for i, t in enumerate(r.items(alerting.get("tiers"), "alerting.tiers"))),
        slos=tuple(
            slo
            for i, item in enumerate(r.items(top.get("slos"), "slos"))
            for slo in _read_slo(r, item, f"slos[{i}]")
        ),
        triggers=tuple(_read_trigger(r, t, f"triggers[{i}]") for i, t in enumerate(r.items(top.get("triggers", []), "triggers"))),
        low_traffic_min_events=r.optional(
            alerting, "low_traffic_min_events", "alerting", fields.count, _default(Spec, "low_traffic_min_events")
        ),
        quantile_windows_s=_read_quantile_windows(r, stream),
        pane_s=r.optional(stream, "pane", "stream", fields.positive_duration, _default(Spec, "pane_s")),
        allowed_lateness_s=r.optional(stream, "allowed_lateness", "stream", fields.duration, _default(Spec, "allowed_lateness_s")),
        source=source,
        dimension=_read_dimension(r, top["dimension"]) if "dimension" in top else None,
    )


def _read_dimension(r: Reader, raw: Any) -> Dimension:
    """The ``dimension:`` block: a label name, its allow-list and the SLIs that opt in."""
    path = "dimension"
    data = r.mapping(raw, path)
    r.unknown(data, {"name", "values", "slis"}, path)
    values = _read_unique(r, data, "values", fields.dimension_value)
    if "values" in data and not 1 <= len(r.items(data["values"], f"{path}.values")) <= MAX_DIMENSION_VALUES:
        r.fail(f"{path}.values", f"must list 1..{MAX_DIMENSION_VALUES} values")
    slis = _read_unique(r, data, "slis", fields.sli)
    if "slis" in data and not r.items(data["slis"], f"{path}.slis"):
        r.fail(f"{path}.slis", "must list at least one SLI")
    if len({c.SLI_ERRORS, c.SLI_EXITS_BEFORE_START} & set(slis)) == 1:
        # One attempts counter is the denominator of both: split for one SLI
        # and not the other, its series would count every attempt twice.
        r.fail(f"{path}.slis", f"{c.SLI_ERRORS} and {c.SLI_EXITS_BEFORE_START} share the attempts: list both or neither")
    return Dimension(name=r.required(data, "name", path, fields.label_name, ""), values=values, slis=slis)


def _read_unique(r: Reader, data: dict[str, Any], key: str, convert: Callable[[Any], str]) -> tuple[str, ...]:
    """``dimension.<key>``: a required list of distinct items, each through ``convert``."""
    path = f"dimension.{key}"
    if key not in data:
        r.fail(path, "is required")
        return ()
    items: list[str] = []
    raw = data[key]
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        try:
            value = convert(item)
        except (TypeError, ValueError) as exc:
            r.fail(f"{path}[{i}]", str(exc))
            continue
        if value in items:
            r.fail(f"{path}[{i}]", f"duplicate {value!r}")
        else:
            items.append(value)
    return tuple(items)


def _read_quantile_windows(r: Reader, stream: dict[str, Any]) -> tuple[float, ...]:
    if "quantile_windows" not in stream:
        default: tuple[float, ...] = _default(Spec, "quantile_windows_s")
        return default
    windows = []
    for i, item in enumerate(r.items(stream["quantile_windows"], "stream.quantile_windows")):
        try:
            windows.append(fields.positive_duration(item))
        except (TypeError, ValueError) as exc:
            r.fail(f"stream.quantile_windows[{i}]", str(exc))
    return tuple(sorted(windows))


def _read_regions(r: Reader, value: Any) -> tuple[str, ...]:
    regions = []
    for i, item in enumerate(r.items(value, "regions")):
        if not isinstance(item, str) or not _REGION.match(item) or item == c.REGION_OTHER:
            r.fail(f"regions[{i}]", f"must be a region name (a-z, 0-9, -), not {c.REGION_OTHER!r}")
        else:
            regions.append(item)
    if value is not None and isinstance(value, list) and not value:
        r.fail("regions", "must list at least one region")
    return tuple(regions)


def _read_tier(r: Reader, raw: Any, path: str) -> Tier:
    data = r.mapping(raw, path)
    r.unknown(data, {"name", "long", "short", "factor", "severity", "for"}, path)
    return Tier(
        name=r.required(data, "name", path, fields.name, ""),
        long_s=r.required(data, "long", path, fields.positive_duration, 1.0),
        short_s=r.required(data, "short", path, fields.positive_duration, 1.0),
        factor=r.required(data, "factor", path, fields.positive, 1.0),
        severity=r.required(data, "severity", path, fields.severity, c.SEVERITY_PAGE),
        for_s=r.optional(data, "for", path, fields.duration, _default(Tier, "for_s")),
    )


def _read_slo(r: Reader, raw: Any, path: str) -> list[SLO]:
    data = r.mapping(raw, path)
    r.unknown(data, {"sli", "description", "objectives"}, path)
    sli = r.required(data, "sli", path, fields.sli, "")
    description = r.optional(data, "description", path, fields.text, _default(SLO, "description"))
    slos = []
    for j, item in enumerate(r.items(data.get("objectives"), f"{path}.objectives")):
        where = f"{path}.objectives[{j}]"
        obj = r.mapping(item, where)
        if not sli:
            continue
        max_severity = r.optional(obj, "max_severity", where, fields.max_severity, _default(SLO, "max_severity"))
        if sli_kind(sli) == c.SLI_KIND_LATENCY:
            r.unknown(obj, {"name", "quantile", "threshold_ms", "max_severity"}, where)
            quantile = r.required(obj, "quantile", where, fields.ratio, 0.5)
            threshold_ms = r.required(obj, "threshold_ms", where, fields.positive, 1.0)
            default_name = f"{sli}-p{quantile * 100:g}".replace(".", "_")
            slos.append(
                SLO(
                    name=r.optional(obj, "name", where, fields.name, default_name),
                    sli=sli,
                    budget=round(1.0 - quantile, 12),
                    quantile=quantile,
                    threshold_s=threshold_ms / 1000.0,
                    description=description,
                    max_severity=max_severity,
                )
            )
        else:  # a ratio or time ratio: bad / total at most max_ratio
            r.unknown(obj, {"name", "max_ratio", "max_severity"}, where)
            budget = r.required(obj, "max_ratio", where, fields.ratio, 0.5)
            name = r.optional(obj, "name", where, fields.name, sli)
            slos.append(
                SLO(name=name, sli=sli, budget=budget, description=description, max_severity=max_severity)
            )
    return slos


def _read_trigger(r: Reader, raw: Any, path: str) -> Trigger:
    data = r.mapping(raw, path)
    r.unknown(data, _TRIGGER_FIELDS, path)
    conditions = []
    for j, item in enumerate(r.items(data.get("any"), f"{path}.any")):
        where = f"{path}.any[{j}]"
        cond = r.mapping(item, where)
        r.unknown(cond, {"sli", "quantile", "above_ms", "above_ratio"}, where)
        sli = r.required(cond, "sli", where, fields.sli, "")
        if not sli:
            continue
        if sli_kind(sli) != c.SLI_KIND_LATENCY:  # ratio and time ratio SLIs
            conditions.append(Condition(sli=sli, above_ratio=r.required(cond, "above_ratio", where, fields.ratio, 0.5)))
        else:
            quantile = r.required(cond, "quantile", where, fields.ratio, 0.5)
            above_ms = r.required(cond, "above_ms", where, fields.positive, 1.0)
            conditions.append(Condition(sli=sli, quantile=quantile, above_s=above_ms / 1000.0))

    def optional(key: str, convert: Callable[[Any], T], attr: str) -> T:
        default: T = _default(Trigger, attr)
        return r.optional(data, key, path, convert, default)

    return Trigger(
        name=r.required(data, "name", path, fields.name, ""),
        conditions=tuple(conditions),
        action=optional("action", fields.text, "action"),
        for_s=optional("for", fields.duration, "for_s"),
        window_s=optional("window", fields.positive_duration, "window_s"),
        min_events=optional("min_events", fields.count, "min_events"),
        recover_for_s=optional("recover_for", fields.duration, "recover_for_s"),
        on_no_data=optional("on_no_data", fields.no_data, "on_no_data"),
        stale_after_s=optional("stale_after", fields.positive_duration, "stale_after_s"),
        severity=optional("severity", fields.severity, "severity"),
        alert=optional("alert", fields.alert_name, "alert"),
        runbook=optional("runbook", fields.anchor, "runbook"),
        targets=tuple(
            _read_target(r, item, f"{path}.targets[{k}]")
            for k, item in enumerate(r.items(data.get("targets", []), f"{path}.targets"))
        ),
    )


_TRIGGER_FIELDS = {
    "name", "action", "for", "window", "min_events", "any", "recover_for", "on_no_data",
    "stale_after", "severity", "alert", "targets", "runbook",
}
_TARGET_FIELDS = {"kind", "workload", "namespace", "min_replicas", "max_replicas", "fqdn"}


def _read_target(r: Reader, raw: Any, path: str) -> Target:
    data = r.mapping(raw, path)
    r.unknown(data, _TARGET_FIELDS, path)
    kind = r.required(data, "kind", path, fields.target_kind, TARGET_HPA)
    scaler = kind == TARGET_HPA
    for key in ("workload",) if scaler else ("fqdn",):
        if key not in data:
            r.fail(f"{path}.{key}", f"is required for kind {kind}")

    def optional(key: str, convert: Callable[[Any], T]) -> T:
        default: T = _default(Target, key)
        return r.optional(data, key, path, convert, default)

    return Target(
        kind=kind,
        workload=optional("workload", fields.k8s_name),
        namespace=optional("namespace", fields.k8s_name),
        min_replicas=optional("min_replicas", fields.replicas),
        max_replicas=optional("max_replicas", fields.replicas),
        fqdn=optional("fqdn", fields.fqdn),
    )
