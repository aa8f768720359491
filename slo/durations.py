"""Prometheus-style durations (``90s``, ``5m``, ``1h30m``, ``30d``) to seconds and back."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str) -> float:
    """Return the number of seconds in ``text``.

    >>> parse_duration("1h30m")
    5400.0

    Raises ``ValueError`` naming the text when it is not a duration.
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f"not a duration: {text!r} (want e.g. 30s, 5m, 1h, 30d)")
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"not a duration: {text!r} (want e.g. 30s, 5m, 1h, 30d)")
    return total


def format_duration(seconds: float) -> str:
    """Return the shortest Prometheus duration for ``seconds`` (``3600 -> "1h"``).

    Whole days, hours, minutes and seconds are combined (``5400 -> "1h30m"``);
    sub-second values are written in milliseconds.
    """
    if seconds < 0:
        raise ValueError(f"negative duration: {seconds}")
    if seconds == 0:
        return "0s"
    ms = round(seconds * 1000)
    if ms % 1000:
        return f"{ms}ms"
    rest = ms // 1000
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(out)
