"""Field converters of the spec file: one YAML value in, a typed value out, or ValueError.

``slo/spec.py`` reads every field through one of these; the message says what
the value must be, and the reader adds the field's path
(``slos[1].objectives[0].threshold_ms: must be > 0``).

>>> positive_duration("5m")
300.0
"""

from __future__ import annotations

import math
import re
from typing import Any

from slo import conventions as c
from slo import limits
from slo.durations import parse_duration
from slo.model import NO_DATA_POLICIES, TARGET_KINDS

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_ALERT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_ANCHOR = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_K8S_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_FQDN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def positive(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("must be a number")
    if value <= 0:
        raise ValueError("must be > 0")
    return float(value)


def ratio(value: Any) -> float:
    number = positive(value)
    if number >= 1:
        raise ValueError("must be between 0 and 1 (exclusive)")
    return number


def count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("must be a non-negative integer")
    return value


def duration(value: Any) -> float:
    if not isinstance(value, str):
        raise ValueError("must be a duration string such as 5m")
    return parse_duration(value)


def positive_duration(value: Any) -> float:
    seconds = duration(value)
    if seconds <= 0:
        raise ValueError("must be > 0")
    return seconds


def name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError("must be a lowercase name (a-z, 0-9, _ . -)")
    return value


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def severity(value: Any) -> str:
    if value not in (c.SEVERITY_PAGE, c.SEVERITY_TICKET):
        raise ValueError(f"must be {c.SEVERITY_PAGE!r} or {c.SEVERITY_TICKET!r}")
    return str(value)


def kind(value: Any) -> str:
    if value not in c.KINDS:
        raise ValueError(f"must be one of {', '.join(c.KINDS)}")
    return str(value)


def sli(value: Any) -> str:
    if value not in c.SLIS:
        raise ValueError(f"must be one of {', '.join(c.SLIS)}")
    return str(value)


def max_severity(value: Any) -> str:
    """``ticket`` caps every alert of the SLO; ``page`` is no cap (stored as ``""``)."""
    return "" if severity(value) == c.SEVERITY_PAGE else c.SEVERITY_TICKET


def label_name(value: Any) -> str:
    """A Prometheus label name that streamslo does not use itself.

    >>> label_name("cdn")
    'cdn'
    """
    if not isinstance(value, str) or not _LABEL.match(value) or value.startswith("__"):
        raise ValueError("must be a Prometheus label name (a-z, A-Z, 0-9, _; not starting with __)")
    if value in c.RESERVED_LABELS:
        raise ValueError(f"{value!r} is a label streamslo or Prometheus already uses")
    return value


def dimension_value(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limits.MAX_LABEL or not value.isprintable():
        raise ValueError(f"must be a printable string of 1..{limits.MAX_LABEL} characters")
    if value == c.REGION_OTHER:
        raise ValueError(f"must not be {c.REGION_OTHER!r}: it is the catch-all")
    return value


def no_data(value: Any) -> str:
    if value not in NO_DATA_POLICIES:
        raise ValueError(f"must be one of {', '.join(NO_DATA_POLICIES)}")
    return str(value)


def alert_name(value: Any) -> str:
    if not isinstance(value, str) or not _ALERT.match(value):
        raise ValueError("must be a Prometheus alert name (A-Z, a-z, 0-9, _)")
    return value


def anchor(value: Any) -> str:
    if not isinstance(value, str) or not _ANCHOR.match(value):
        raise ValueError("must be a runbook anchor (a-z, 0-9, -)")
    return value


def target_kind(value: Any) -> str:
    if value not in TARGET_KINDS:
        raise ValueError(f"must be one of {', '.join(TARGET_KINDS)}")
    return str(value)


def k8s_name(value: Any) -> str:
    # "{region}" is filled in later; the rest must be a DNS-1123 label.
    if not isinstance(value, str) or not _K8S_NAME.match(value.replace("{region}", "region")):
        raise ValueError("must be a Kubernetes name (a-z, 0-9, -; {region} allowed)")
    return value


def fqdn(value: Any) -> str:
    if not isinstance(value, str) or not _FQDN.match(value.replace("{region}", "region")):
        raise ValueError("must be a host name such as {region}.live.example.com")
    return value


def replicas(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("must be an integer >= 1")
    return value
