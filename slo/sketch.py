"""Mergeable log-bucket quantile sketch (DDSketch's logarithmic index mapping).

Use :class:`LogSketch` wherever a latency percentile must survive aggregation:
stage 1 fills one sketch per pane with :meth:`LogSketch.add_batch`, ships it as
:meth:`LogSketch.to_bytes`, stage 2 merges partials and rolling windows add the
newest pane and :meth:`LogSketch.subtract` the expired one.

Buckets are those of the ``ddsketch`` package's ``DDSketch(relative_accuracy)``
(``LogarithmicMapping`` with offset 0, ``DenseStore``): the same value lands in
the same key. Differences are deliberate and explicit: NaN, negatives and
infinities are rejected and counted (``rejected``), values above the largest
indexable value are clamped to it and counted (``clamped``), and quantiles follow
numpy's default definition (``numpy.quantile(x, q)``, linear between the two
order statistics around rank ``q (n - 1)``), within α of it for any data;
``method="lower"`` gives ddsketch's value (the order statistic at ``floor(q (n - 1))``).
The two definitions differ by far more than α where neighbouring values are far
apart (a p99 over 20 events): no single estimate can be within α of both there.

Memory: counts are ``int64`` bins over the occupied key range only, allocated in
chunk-aligned runs of ``CHUNK`` keys so that sketches of similar data share the
same layout and merge with one vectorized add. At α = 1 % a latency range of
10 ms .. 2 s needs about 270 keys, i.e. about 2.5 KiB.

Example::

    s = LogSketch()          # RELATIVE_ACCURACY, 1 %
    s.add_batch(numpy.array([0.120, 0.080, 0.250]))
    s.quantile(0.5)          # ≈ 0.120 (within 1 %)
    t = LogSketch.from_bytes(s.to_bytes())
    assert t == s
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from slo import sketch_wire
from slo.sketch_mapping import LN2, index_mapping

__all__ = ["CHUNK", "QUANTILE_METHODS", "RELATIVE_ACCURACY", "LogSketch", "QuantileMethod"]

CHUNK = 32
"""Bin arrays start and end on multiples of this many keys (merge fast path)."""
RELATIVE_ACCURACY = 0.01
"""α of every latency sketch in the pipeline (sketches of different α do not merge)."""
QuantileMethod = Literal["linear", "lower"]
QUANTILE_METHODS: tuple[QuantileMethod, ...] = ("linear", "lower")
"""numpy's default definition, and the order statistic at ``floor(q (n - 1))`` (ddsketch's)."""

_EMPTY = np.zeros(0, dtype=np.int64)

class LogSketch:
    """Mergeable log-bucket quantile sketch with DDSketch's logarithmic index mapping.

    Use for latency percentiles that must merge exactly across partitions and
    subtract for rolling windows. Values are unit-agnostic (feed seconds).

    Example::

        s = LogSketch()
        s.add(0.2)
        s.quantiles([0.5, 0.99])   # [≈0.2, ≈0.2]
    """

    __slots__ = ("_bins", "_m", "_offset", "_pos_count", "clamped", "rejected", "zero_count")

    def __init__(self, relative_accuracy: float = RELATIVE_ACCURACY) -> None:
        self._m = index_mapping(float(relative_accuracy))
        self._bins: npt.NDArray[np.int64] = _EMPTY
        self._offset = 0  # key of _bins[0]
        self._pos_count = 0  # sum of _bins, kept as a Python int
        self.zero_count = 0
        self.rejected = 0
        self.clamped = 0

    # -- properties -------------------------------------------------------------

    @property
    def relative_accuracy(self) -> float:
        """The accuracy guarantee α given at construction."""
        return self._m.relative_accuracy

    @property
    def count(self) -> int:
        """Accepted values, zeros included (rejected values are not counted here)."""
        return self._pos_count + self.zero_count

    @property
    def is_empty(self) -> bool:
        """True when no value has been accepted."""
        return self._pos_count + self.zero_count == 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the bin array (the only part that grows with the data)."""
        return int(self._bins.nbytes)

    # -- insertion --------------------------------------------------------------

    def add(self, value: float) -> None:
        """Insert one value; prefer :meth:`add_batch` for more than a handful."""
        m = self._m
        if value > m.min_possible:
            if value > m.max_possible:
                if value == math.inf:
                    self.rejected += 1
                    return
                self.clamped += 1
                value = m.max_possible
            key = m.key(value)
            i = key - self._offset
            if i < 0 or i >= len(self._bins):
                self._ensure(key, key)
                i = key - self._offset
            self._bins[i] += 1
            self._pos_count += 1
        elif value >= 0.0:  # zero, -0.0, or positive below the smallest indexable value
            self.zero_count += 1
        else:  # negative, -inf or NaN (every comparison with NaN is false)
            self.rejected += 1

    def add_batch(self, values: npt.NDArray[np.floating] | Sequence[float]) -> None:
        """Insert many values at once (vectorized: no per-value Python work)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        if v.size == 0:
            return
        m = self._m
        pos = v > m.min_possible
        npos = int(np.count_nonzero(pos))
        if npos != v.size:
            nonneg = int(np.count_nonzero(v >= 0.0))
            self.zero_count += nonneg - npos
            self.rejected += v.size - nonneg
            if npos == 0:
                return
            v = v[pos]
        # Same operation order as ddsketch's mapping, so keys are bit-identical.
        k = np.log(v)
        np.divide(k, LN2, out=k)
        np.multiply(k, m.multiplier, out=k)
        np.ceil(k, out=k)
        hi = k.max()
        if hi >= m.max_key:  # +inf or values beyond the indexable range: rare, slow path
            v, k = self._clamp(v, k)
            if v.size == 0:
                return
            hi = k.max()
        lo = int(k.min())
        self._ensure(lo, int(hi))
        np.subtract(k, lo, out=k)  # in float, in place: one allocation less than on ints
        counts = np.bincount(k.astype(np.intp))
        start = lo - self._offset
        view = self._bins[start : start + len(counts)]
        np.add(view, counts, out=view)
        self._pos_count += int(v.size)

    def _clamp(
        self, v: npt.NDArray[np.float64], k: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Reject +inf and clamp values above ``max_possible``; return the kept values/keys."""
        m = self._m
        inf = np.isinf(v)
        n_inf = int(np.count_nonzero(inf))
        if n_inf:
            self.rejected += n_inf
            v, k = v[~inf], k[~inf]
        big = v > m.max_possible
        self.clamped += int(np.count_nonzero(big))
        k[big] = m.max_key
        return v, k

    def _ensure(self, lo: int, hi: int) -> None:
        """Grow the bin array (chunk-aligned) so that keys ``lo..hi`` are addressable."""
        n = len(self._bins)
        if n and self._offset <= lo and hi < self._offset + n:
            return
        if n:
            lo, hi = min(lo, self._offset), max(hi, self._offset + n - 1)
        start = (lo // CHUNK) * CHUNK
        end = (hi // CHUNK + 1) * CHUNK
        bins = np.zeros(end - start, dtype=np.int64)
        if n:
            i = self._offset - start
            bins[i : i + n] = self._bins
        self._bins = bins
        self._offset = start

    # -- merge / subtract -------------------------------------------------------

    def merge(self, other: LogSketch) -> None:
        """Add ``other``'s counts into this sketch (in place). ValueError if α differs."""
        if other._m is not self._m and other._m.gamma != self._m.gamma:
            raise ValueError(
                f"cannot merge sketches with different relative accuracy: "
                f"{self.relative_accuracy!r} and {other.relative_accuracy!r}"
            )
        if other._pos_count:
            ob = other._bins
            sb = self._bins
            i = other._offset - self._offset
            j = i + len(ob)
            # `a[i:j] += b` is the cheapest in-place add numpy offers (no ufunc kwargs)
            if i >= 0 and j <= len(sb):
                if j - i == len(sb):
                    sb += ob  # same chunk-aligned layout
                else:
                    sb[i:j] += ob
            elif not len(sb):
                self._bins = ob.copy()
                self._offset = other._offset
            else:
                self._ensure(other._offset, other._offset + len(ob) - 1)
                i = other._offset - self._offset
                self._bins[i : i + len(ob)] += ob
            self._pos_count += other._pos_count
        if other.zero_count or other.rejected or other.clamped:
            self.zero_count += other.zero_count
            self.rejected += other.rejected
            self.clamped += other.clamped

    def subtract(self, other: LogSketch) -> None:
        """Remove ``other``'s counts (rolling windows). ValueError if any count would go negative.

        Nothing changes when it raises.
        """
        if other._m is not self._m and other._m.gamma != self._m.gamma:
            raise ValueError("cannot subtract sketches with different relative accuracy")
        if (
            other.zero_count > self.zero_count
            or other.rejected > self.rejected
            or other.clamped > self.clamped
            or other._pos_count > self._pos_count
        ):
            raise ValueError("subtract would make a count negative")
        if not other._pos_count:
            self.zero_count -= other.zero_count
            self.rejected -= other.rejected
            self.clamped -= other.clamped
            return
        ob, off = other._bins, other._offset
        i = off - self._offset
        if i < 0 or i + len(ob) > len(self._bins):
            # other's allocation reaches outside ours: only its occupied keys matter
            nz = np.flatnonzero(ob)
            ob = ob[nz[0] : nz[-1] + 1]
            off += int(nz[0])
            i = off - self._offset
            if i < 0 or i + len(ob) > len(self._bins):
                raise ValueError("subtract would make a count negative")
        view = self._bins[i : i + len(ob)]
        np.subtract(view, ob, out=view)
        if view.min() < 0:  # undo, so that a failed subtract changes nothing
            np.add(view, ob, out=view)
            raise ValueError("subtract would make a count negative")
        self._pos_count -= other._pos_count
        self.zero_count -= other.zero_count
        self.rejected -= other.rejected
        self.clamped -= other.clamped

    # -- queries ----------------------------------------------------------------

    def quantile(self, q: float, method: QuantileMethod = "linear") -> float | None:
        """The value at quantile ``q`` (0..1), within α relative; None when empty."""
        return self.quantiles([q], method)[0]

    def quantiles(self, qs: Sequence[float], method: QuantileMethod = "linear") -> list[float | None]:
        """Several quantiles with one cumulative pass; ValueError if any q is outside [0, 1].

        Use the default ``"linear"`` for what users read (numpy's default
        percentile); ``"lower"`` for ddsketch's order statistic. Both are within
        α of their exact definition for any data: "linear" interpolates between
        the two order statistics around rank ``h = q (n - 1)``, each estimated
        within α by its bucket's value, and a weighted mean of two values each
        within α of its target is within α of the same mean of the targets.

        Example::

            s = LogSketch()
            s.add_batch([0.1, 0.2])
            s.quantiles([0.5], "lower"), s.quantiles([0.5])   # [≈0.1], [≈0.15]
        """
        if method not in QUANTILE_METHODS:
            raise ValueError(f"quantile method must be one of {QUANTILE_METHODS}, got {method!r}")
        for q in qs:
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"quantile must be in [0, 1], got {q!r}")
        count = self.count
        if count == 0:
            return [None] * len(qs)
        hs = [q * (count - 1) for q in qs]  # numpy's virtual index for "linear" (and "lower")
        los = [math.floor(h) for h in hs]
        # Ranks below and above each index, looked up in one vectorized pass.
        values = self._values_at(los + [lo + 1 for lo in los])
        n = len(qs)
        out: list[float | None] = []
        for i, (h, lo) in enumerate(zip(hs, los, strict=True)):
            value = values[i]
            if h > lo and method == "linear":
                value += (h - lo) * (values[n + i] - value)
            out.append(value)
        return out

    def _values_at(self, ranks: list[int]) -> list[float]:
        """Estimates of the order statistics at 0-based ``ranks`` (ddsketch's rank rule)."""
        pos = np.asarray(ranks, dtype=np.int64) - self.zero_count
        if not self._pos_count:
            return [0.0] * len(ranks)
        cum = np.cumsum(self._bins)
        # the lowest key whose cumulative count exceeds the rank among the positive values
        idx = np.minimum(np.searchsorted(cum, pos, side="right"), len(cum) - 1)
        value, offset = self._m.value, self._offset
        return [0.0 if r < 0 else value(offset + i) for r, i in zip(pos.tolist(), idx.tolist(), strict=True)]

    # -- copy / equality / serialization ----------------------------------------

    def copy(self) -> LogSketch:
        """An independent deep copy."""
        c = LogSketch.__new__(LogSketch)
        c._m = self._m
        c._bins = self._bins.copy() if self._bins.size else _EMPTY
        c._offset = self._offset
        c._pos_count = self._pos_count
        c.zero_count = self.zero_count
        c.rejected = self.rejected
        c.clamped = self.clamped
        return c

    def _occupied(self) -> tuple[int, npt.NDArray[np.int64]]:
        """(first key, bins) trimmed to the first..last non-zero bin."""
        if not self._pos_count:
            return 0, _EMPTY
        nz = np.flatnonzero(self._bins)
        return self._offset + int(nz[0]), self._bins[nz[0] : nz[-1] + 1]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LogSketch):
            return NotImplemented
        if (self._m.gamma, self.zero_count, self.rejected, self.clamped, self._pos_count) != (
            other._m.gamma,
            other.zero_count,
            other.rejected,
            other.clamped,
            other._pos_count,
        ):
            return False
        k1, b1 = self._occupied()
        k2, b2 = other._occupied()
        return k1 == k2 and bool(np.array_equal(b1, b2))

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"LogSketch(relative_accuracy={self.relative_accuracy!r}, count={self.count}, "
            f"zero_count={self.zero_count}, rejected={self.rejected}, clamped={self.clamped}, "
            f"bins={len(self._bins)})"
        )

    def to_bytes(self) -> bytes:
        """Compact serialization (``slo/sketch_wire.py``): occupied key range only, narrowest width."""
        first, bins = self._occupied()
        return sketch_wire.encode(
            sketch_wire.Fields(self.relative_accuracy, self.zero_count, self.rejected, self.clamped, first, bins)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> LogSketch:
        """Parse :meth:`to_bytes` output; ValueError on corrupt, truncated or unknown input."""
        fields = sketch_wire.decode(data)
        s = cls(fields.relative_accuracy)
        n = len(fields.bins)
        if n:
            first = fields.first_key
            if first < s._m.min_key or first + n - 1 > s._m.max_key:
                raise ValueError("sketch bytes corrupt: key range outside the mapping")
            s._ensure(first, first + n - 1)
            i = first - s._offset
            s._bins[i : i + n] = fields.bins
            s._pos_count = int(fields.bins.sum(dtype=np.uint64))
        s.zero_count, s.rejected, s.clamped = fields.zero_count, fields.rejected, fields.clamped
        return s
