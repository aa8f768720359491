"""The versioned SLO spec file (``apiVersion: streamslo/v1``) and its mapping to the model.

Use :func:`load_spec` for a file and :func:`parse_spec` for an already-parsed
mapping. Both return the model and every problem found, each with its field
path; with ``strict=True`` (the default) errors raise :class:`SpecError`.

>>> spec, warnings = load_spec(DEFAULT_SPEC_PATH)
>>> spec.slo("ttff-p95").threshold_s
0.2

The file format is documented in ``docs/spec.md``; ``slo/specs/default.yaml``
encodes the platform's targets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from slo import conventions as c
from slo.durations import parse_duration
from slo.model import (
    NO_DATA_HEALTHY,
    NO_DATA_POLICIES,
    SLO,
    TARGET_HPA,
    TARGET_KINDS,
    Condition,
    Spec,
    Target,
    Tier,
    Trigger,
)
from slo.validation import Problem, check_model

API_VERSION = "streamslo/v1"
DEFAULT_SPEC_PATH = Path(__file__).parent / "specs" / "default.yaml"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_ALERT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_K8S_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_FQDN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

T = TypeVar("T")


class SpecError(ValueError):
    """The spec has errors; ``problems`` lists all of them."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"invalid spec {source}:\n{lines}")


def load_spec(path: str | Path | None = None, *, strict: bool = True) -> tuple[Spec, list[Problem]]:
    """Read and validate the spec at ``path`` (the default spec when None)."""
    path = Path(path) if path is not None else DEFAULT_SPEC_PATH
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError(str(path), [Problem("<file>", f"not valid YAML: {exc}")]) from exc
    return parse_spec(raw, source=str(path), strict=strict)


def parse_spec(raw: Any, *, source: str = "<memory>", strict: bool = True) -> tuple[Spec, list[Problem]]:
    """Map a parsed YAML document into the model.

    Returns ``(spec, problems)``. With ``strict`` any error raises
    :class:`SpecError`; otherwise the returned spec may be partial and must
    not be used when ``problems`` holds errors.
    """
    reader = _Reader()
    spec = _read_spec(reader, raw, source)
    problems = reader.problems
    if not any(p.is_error for p in problems):
        problems += check_model(spec)
    if strict and any(p.is_error for p in problems):
        raise SpecError(source, [p for p in problems if p.is_error])
    return spec, problems


class _Reader:
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

    def field(
        self,
        data: dict[str, Any],
        key: str,
        path: str,
        convert: Callable[[Any], T],
        default: T | None = None,
    ) -> T | None:
        where = f"{path}.{key}" if path else key
        if key not in data:
            if default is None:
                self.fail(where, "is required")
            return default
        try:
            return convert(data[key])
        except (TypeError, ValueError) as exc:
            self.fail(where, str(exc))
            return default

    def unknown(self, data: dict[str, Any], known: set[str], path: str) -> None:
        for key in sorted(set(data) - known):
            self.fail(f"{path}.{key}" if path else key, "unknown field")


# --- field converters: raise ValueError with a message, the reader adds the path


def _positive(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("must be a number")
    if value <= 0:
        raise ValueError("must be > 0")
    return float(value)


def _ratio(value: Any) -> float:
    number = _positive(value)
    if number >= 1:
        raise ValueError("must be between 0 and 1 (exclusive)")
    return number


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("must be a non-negative integer")
    return value


def _duration(value: Any) -> float:
    if not isinstance(value, str):
        raise ValueError("must be a duration string such as 5m")
    return parse_duration(value)


def _positive_duration(value: Any) -> float:
    seconds = _duration(value)
    if seconds <= 0:
        raise ValueError("must be > 0")
    return seconds


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError("must be a lowercase name (a-z, 0-9, _ . -)")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def _severity(value: Any) -> str:
    if value not in (c.SEVERITY_PAGE, c.SEVERITY_TICKET):
        raise ValueError(f"must be {c.SEVERITY_PAGE!r} or {c.SEVERITY_TICKET!r}")
    return str(value)


def _kind(value: Any) -> str:
    if value not in c.KINDS:
        raise ValueError(f"must be one of {', '.join(c.KINDS)}")
    return str(value)


def _sli(value: Any) -> str:
    if value not in c.SLIS:
        raise ValueError(f"must be one of {', '.join(c.SLIS)}")
    return str(value)


def _no_data(value: Any) -> str:
    if value not in NO_DATA_POLICIES:
        raise ValueError(f"must be one of {', '.join(NO_DATA_POLICIES)}")
    return str(value)


def _alert_name(value: Any) -> str:
    if not isinstance(value, str) or not _ALERT.match(value):
        raise ValueError("must be a Prometheus alert name (A-Z, a-z, 0-9, _)")
    return value


def _target_kind(value: Any) -> str:
    if value not in TARGET_KINDS:
        raise ValueError(f"must be one of {', '.join(TARGET_KINDS)}")
    return str(value)


def _k8s_name(value: Any) -> str:
    # "{region}" is filled in later; the rest must be a DNS-1123 label.
    if not isinstance(value, str) or not _K8S_NAME.match(value.replace("{region}", "region")):
        raise ValueError("must be a Kubernetes name (a-z, 0-9, -; {region} allowed)")
    return value


def _fqdn(value: Any) -> str:
    if not isinstance(value, str) or not _FQDN.match(value.replace("{region}", "region")):
        raise ValueError("must be a host name such as {region}.live.example.com")
    return value


def _replicas(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("must be an integer >= 1")
    return value


# --- sections ------------------------------------------------------------------

_TOP = {"apiVersion", "name", "period", "regions", "evaluate_kind", "stream", "alerting", "slos", "triggers"}


def _read_spec(r: _Reader, raw: Any, source: str) -> Spec:
    top = r.mapping(raw, "<root>")
    if top and top.get("apiVersion") != API_VERSION:
        r.fail("apiVersion", f"must be {API_VERSION!r}")
    r.unknown(top, _TOP, "")
    stream = r.mapping(top.get("stream", {}), "stream")
    r.unknown(stream, {"pane", "allowed_lateness", "quantile_windows"}, "stream")
    alerting = r.mapping(top.get("alerting", {}), "alerting")
    r.unknown(alerting, {"low_traffic_min_events", "tiers"}, "alerting")
    quantile_windows = []
    for i, item in enumerate(r.items(stream.get("quantile_windows", ["1m", "5m", "1h"]), "stream.quantile_windows")):
        window = r.field({"window": item}, "window", "stream", _positive_duration, 0.0)
        if window:
            quantile_windows.append(window)
        elif r.problems and r.problems[-1].path == "stream.window":
            r.problems[-1] = Problem(f"stream.quantile_windows[{i}]", r.problems[-1].message)
    return Spec(
        name=r.field(top, "name", "", _name) or "",
        period_s=r.field(top, "period", "", _positive_duration) or 30 * 86400.0,
        regions=_read_regions(r, top.get("regions")),
        evaluate_kind=r.field(top, "evaluate_kind", "", _kind, c.KIND_RUM) or c.KIND_RUM,
        tiers=tuple(_read_tier(r, t, f"alerting.tiers[{i}]") for i, t in enumerate(r.items(alerting.get("tiers"), "alerting.tiers"))),
        slos=tuple(
            slo
            for i, item in enumerate(r.items(top.get("slos"), "slos"))
            for slo in _read_slo(r, item, f"slos[{i}]")
        ),
        triggers=tuple(_read_trigger(r, t, f"triggers[{i}]") for i, t in enumerate(r.items(top.get("triggers", []), "triggers"))),
        low_traffic_min_events=r.field(alerting, "low_traffic_min_events", "alerting", _count, 0) or 0,
        quantile_windows_s=tuple(sorted(quantile_windows)),
        pane_s=r.field(stream, "pane", "stream", _positive_duration, 2.0) or 2.0,
        allowed_lateness_s=r.field(stream, "allowed_lateness", "stream", _duration, 10.0) or 0.0,
        source=source,
    )


def _read_regions(r: _Reader, value: Any) -> tuple[str, ...]:
    regions = []
    for i, item in enumerate(r.items(value, "regions")):
        if not isinstance(item, str) or not _REGION.match(item) or item == c.REGION_OTHER:
            r.fail(f"regions[{i}]", f"must be a region name (a-z, 0-9, -), not {c.REGION_OTHER!r}")
        else:
            regions.append(item)
    if value is not None and isinstance(value, list) and not value:
        r.fail("regions", "must list at least one region")
    return tuple(regions)


def _read_tier(r: _Reader, raw: Any, path: str) -> Tier:
    data = r.mapping(raw, path)
    r.unknown(data, {"name", "long", "short", "factor", "severity", "for"}, path)
    return Tier(
        name=r.field(data, "name", path, _name) or "",
        long_s=r.field(data, "long", path, _positive_duration) or 1.0,
        short_s=r.field(data, "short", path, _positive_duration) or 1.0,
        factor=r.field(data, "factor", path, _positive) or 1.0,
        severity=r.field(data, "severity", path, _severity) or c.SEVERITY_PAGE,
        for_s=r.field(data, "for", path, _duration, 0.0) or 0.0,
    )


def _read_slo(r: _Reader, raw: Any, path: str) -> list[SLO]:
    data = r.mapping(raw, path)
    r.unknown(data, {"sli", "description", "objectives"}, path)
    sli = r.field(data, "sli", path, _sli) or ""
    description = r.field(data, "description", path, _text, "") or ""
    slos = []
    for j, item in enumerate(r.items(data.get("objectives"), f"{path}.objectives")):
        where = f"{path}.objectives[{j}]"
        obj = r.mapping(item, where)
        if sli == c.SLI_ERRORS:
            r.unknown(obj, {"name", "max_ratio"}, where)
            budget = r.field(obj, "max_ratio", where, _ratio) or 0.01
            name = r.field(obj, "name", where, _name, sli) or sli
            slos.append(SLO(name=name, sli=sli, budget=budget, description=description))
        elif sli:
            r.unknown(obj, {"name", "quantile", "threshold_ms"}, where)
            quantile = r.field(obj, "quantile", where, _ratio) or 0.5
            threshold_ms = r.field(obj, "threshold_ms", where, _positive) or 1.0
            default_name = f"{sli}-p{quantile * 100:g}".replace(".", "_")
            name = r.field(obj, "name", where, _name, default_name) or default_name
            slos.append(
                SLO(
                    name=name,
                    sli=sli,
                    budget=round(1.0 - quantile, 12),
                    quantile=quantile,
                    threshold_s=threshold_ms / 1000.0,
                    description=description,
                )
            )
    return slos


def _read_trigger(r: _Reader, raw: Any, path: str) -> Trigger:
    data = r.mapping(raw, path)
    r.unknown(data, _TRIGGER_FIELDS, path)
    conditions = []
    for j, item in enumerate(r.items(data.get("any"), f"{path}.any")):
        where = f"{path}.any[{j}]"
        cond = r.mapping(item, where)
        r.unknown(cond, {"sli", "quantile", "above_ms", "above_ratio"}, where)
        sli = r.field(cond, "sli", where, _sli) or ""
        if sli == c.SLI_ERRORS:
            conditions.append(Condition(sli=sli, above_ratio=r.field(cond, "above_ratio", where, _ratio) or 0.01))
        else:
            quantile = r.field(cond, "quantile", where, _ratio) or 0.5
            above_ms = r.field(cond, "above_ms", where, _positive) or 1.0
            conditions.append(Condition(sli=sli, quantile=quantile, above_s=above_ms / 1000.0))
    return Trigger(
        name=r.field(data, "name", path, _name) or "",
        action=r.field(data, "action", path, _text, "") or "",
        for_s=r.field(data, "for", path, _duration, 0.0) or 0.0,
        window_s=r.field(data, "window", path, _positive_duration, 60.0) or 60.0,
        conditions=tuple(conditions),
        min_events=r.field(data, "min_events", path, _count, 0) or 0,
        recover_for_s=r.field(data, "recover_for", path, _duration, 0.0) or 0.0,
        on_no_data=r.field(data, "on_no_data", path, _no_data, NO_DATA_HEALTHY) or NO_DATA_HEALTHY,
        stale_after_s=r.field(data, "stale_after", path, _positive_duration, 60.0) or 60.0,
        severity=r.field(data, "severity", path, _severity, c.SEVERITY_TICKET) or c.SEVERITY_TICKET,
        alert=r.field(data, "alert", path, _alert_name, "") or "",
        targets=tuple(
            _read_target(r, item, f"{path}.targets[{k}]")
            for k, item in enumerate(r.items(data.get("targets", []), f"{path}.targets"))
        ),
    )


_TRIGGER_FIELDS = {
    "name", "action", "for", "window", "min_events", "any", "recover_for", "on_no_data",
    "stale_after", "severity", "alert", "targets",
}
_TARGET_FIELDS = {"kind", "workload", "namespace", "min_replicas", "max_replicas", "fqdn"}


def _read_target(r: _Reader, raw: Any, path: str) -> Target:
    data = r.mapping(raw, path)
    r.unknown(data, _TARGET_FIELDS, path)
    kind = r.field(data, "kind", path, _target_kind) or TARGET_HPA
    scaler = kind == TARGET_HPA
    for key in ("workload",) if scaler else ("fqdn",):
        if key not in data:
            r.fail(f"{path}.{key}", f"is required for kind {kind}")
    return Target(
        kind=kind,
        workload=r.field(data, "workload", path, _k8s_name, "") or "",
        namespace=r.field(data, "namespace", path, _k8s_name, "default") or "default",
        min_replicas=r.field(data, "min_replicas", path, _replicas, 2) or 2,
        max_replicas=r.field(data, "max_replicas", path, _replicas, 20) or 20,
        fqdn=r.field(data, "fqdn", path, _fqdn, "") or "",
    )
