"""DDSketch's logarithmic index mapping: value <-> bucket key, for :class:`slo.sketch.LogSketch`.

The constants are computed exactly as the ``ddsketch`` package's
``LogarithmicMapping`` (offset 0) computes them, so the same value lands in
the same key in both (``tests/test_sketch.py`` compares them).

Example::

    m = index_mapping(0.01)
    m.value(m.key(0.120))    # within 1 % of 0.120
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["LN2", "IndexMapping", "index_mapping", "key_of"]

LN2 = math.log(2)


def key_of(value: float, multiplier: float) -> int:
    """The bucket key of ``value`` (> 0) for a mapping of ``multiplier``."""
    # Same operation order as ddsketch: (ln(v) / ln 2) * multiplier, then ceil.
    return math.ceil(math.log(value, 2) * multiplier)


@dataclass(frozen=True, slots=True)
class IndexMapping:
    """DDSketch's ``LogarithmicMapping`` constants, computed exactly as the package does."""

    relative_accuracy: float
    gamma: float
    multiplier: float
    min_possible: float
    max_possible: float
    min_key: int
    max_key: int
    value_factor: float

    def key(self, value: float) -> int:
        return key_of(value, self.multiplier)

    def value(self, key: int) -> float:
        return math.pow(2.0, float(key) / self.multiplier) * self.value_factor


@lru_cache(maxsize=16)
def index_mapping(relative_accuracy: float) -> IndexMapping:
    """The mapping for ``relative_accuracy`` (cached: every sketch of one α shares it)."""
    if not 0.0 < relative_accuracy < 1.0:
        raise ValueError(f"relative_accuracy must be in (0, 1), got {relative_accuracy!r}")
    mantissa = 2 * relative_accuracy / (1 - relative_accuracy)
    gamma = 1 + mantissa
    multiplier = (1 / math.log1p(mantissa)) * math.log(2)
    lo, hi = sys.float_info.min * gamma, sys.float_info.max / gamma
    k_lo, k_hi = key_of(math.nextafter(lo, math.inf), multiplier), key_of(hi, multiplier)
    return IndexMapping(relative_accuracy, gamma, multiplier, lo, hi, k_lo, k_hi, 2.0 / (1 + gamma))
