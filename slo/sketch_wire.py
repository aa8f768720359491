"""The wire format of :class:`slo.sketch.LogSketch` (v1): what stage 1 ships in every partial.

Use :meth:`LogSketch.to_bytes` / :meth:`LogSketch.from_bytes`; this module is
their codec over plain values, so the format is read in one place. Layout,
little-endian: magic ``LSK``, version, bin width in bytes (0 = no bins),
relative accuracy, zero count, rejected, clamped, first key, number of bins;
then the bins at the narrowest width that holds the largest; then a CRC32 of
everything before it. ``tests/golden/sketch_v1.hex`` pins the bytes.

Example::

    data = encode(Fields(0.01, zero_count=0, rejected=0, clamped=0, first_key=7, bins=bins))
    decode(data).bins        # the same counts, as int64
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["Fields", "decode", "encode"]

_MAGIC = b"LSK"
_VERSION = 1
_HEADER = struct.Struct("<3sBBdQQQiI")
_CRC = struct.Struct("<I")
_WIDTHS: dict[int, np.dtype[np.unsignedinteger]] = {w: np.dtype(f"<u{w}") for w in (1, 2, 4, 8)}


class Fields(NamedTuple):
    """Everything a sketch puts on the wire: its accuracy, counters and occupied bins."""

    relative_accuracy: float
    zero_count: int
    rejected: int
    clamped: int
    first_key: int
    bins: npt.NDArray[np.int64]


def encode(fields: Fields) -> bytes:
    """The v1 bytes of ``fields`` (``bins`` non-negative, first to last occupied key)."""
    bins = fields.bins
    width = 0
    if bins.size:
        top = int(bins.max())
        width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4 if top < 1 << 32 else 8
    head = _HEADER.pack(
        _MAGIC,
        _VERSION,
        width,
        fields.relative_accuracy,
        fields.zero_count,
        fields.rejected,
        fields.clamped,
        fields.first_key,
        len(bins),
    )
    body = head + (bins.astype(_WIDTHS[width]).tobytes() if width else b"")
    return body + _CRC.pack(zlib.crc32(body))


def decode(data: bytes) -> Fields:
    """Parse :func:`encode` output; ValueError on corrupt, truncated or unknown input.

    The key range is checked against the accuracy's mapping by the caller
    (:meth:`LogSketch.from_bytes`), which owns the mapping.
    """
    data = bytes(data)
    if len(data) < _HEADER.size + _CRC.size:
        raise ValueError(f"sketch bytes truncated: {len(data)} bytes")
    body = data[: -_CRC.size]
    if _CRC.unpack(data[-_CRC.size :])[0] != zlib.crc32(body):
        raise ValueError("sketch bytes corrupt: checksum mismatch")
    magic, version, width, alpha, zeros, rejected, clamped, first, n = _HEADER.unpack_from(body)
    if magic != _MAGIC:
        raise ValueError("not a LogSketch: bad magic")
    if version != _VERSION:
        raise ValueError(f"unsupported LogSketch version {version}")
    if (width not in _WIDTHS and width != 0) or (width == 0) != (n == 0):
        raise ValueError("sketch bytes corrupt: bad header")
    if not 0.0 < alpha < 1.0:
        raise ValueError("sketch bytes corrupt: bad header")
    if len(body) - _HEADER.size != n * width:
        raise ValueError("sketch bytes truncated or padded: bin length mismatch")
    bins = np.zeros(0, dtype=np.int64)
    if n:
        raw = np.frombuffer(body, dtype=_WIDTHS[width], count=n, offset=_HEADER.size)
        if width == 8 and int(raw.max()) > np.iinfo(np.int64).max:
            raise ValueError("sketch bytes corrupt: bin count overflows int64")
        bins = raw.astype(np.int64)
    return Fields(alpha, zeros, rejected, clamped, first, bins)
