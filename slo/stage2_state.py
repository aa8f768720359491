"""Stage 2's state of one region, and its serialized form (the changelog value).

:class:`RegionState` holds a region's series (per (sli, kind) and dim), its
idempotence watermarks and its trigger memory; :class:`slo.stage2.Stage2`
keeps one per region. :func:`encode_region` / :func:`decode_region` turn it
into the bytes ``Stage2.export_region`` writes once per region per flush
(magic ``S2R2``, zlib-compressed msgpack) and back. A state written before
series had a dim (``S2R1``, before the QoE SLIs) still decodes: its series and
flushed keys take dim ``""``, then go through the spec's dimension like any
partial.

Example::

    data = encode_region(state)
    state = decode_region(spec, data, dim_of=lambda sli, dim: dim)
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import msgspec

from slo.budget import TriggerTracker
from slo.health import Memory
from slo.model import Spec
from slo.windows import Series, SeriesState, series_sli

__all__ = ["RegionState", "decode_region", "encode_region"]

STATE_MAGIC = b"S2R2"
STATE_MAGIC_V1 = b"S2R1"  # before series had a dim (issue 16): imported with dim ""

_Health = tuple[bool, float | None, float | None, float | None, float | None, float | None]


class RegionState:
    """One region in stage 2: its series, watermarks and trigger memory."""

    def __init__(self, spec: Spec) -> None:
        # (sli, kind) -> dim -> series
        self.series: dict[tuple[str, str], dict[str, Series]] = {}
        self.watermarks: dict[str, int] = {}
        self.flushed: dict[str, set[tuple[str, str, str, float]]] = {}
        self.triggers = TriggerTracker(spec.triggers)

    def all_series(self) -> list[Series]:
        return [s for by_dim in self.series.values() for s in by_dim.values()]

    def parts(self, sli: str, kind: str) -> list[Series]:
        """The series of ``sli`` (any SLI: exits_before_start reads errors) and ``kind``, one per dim."""
        return list(self.series.get((series_sli(sli), kind), {}).values())


class _Payload(msgspec.Struct, array_like=True):
    series: list[tuple[str, str, str, SeriesState]]  # (sli, kind, dim, state)
    watermarks: list[tuple[str, int, list[tuple[str, str, str, float]]]]
    # trigger -> (breached, breach_since, held_since, clear_since, no_data_since, observed_at)
    health: dict[str, _Health]


class _PayloadV1(msgspec.Struct, array_like=True):
    """The ``S2R1`` layout: series and flushed keys without a dim."""

    series: list[tuple[str, str, SeriesState]]
    watermarks: list[tuple[str, int, list[tuple[str, str, float]]]]
    trigger_since: dict[str, float]  # read when ``health`` is absent (older states)
    health: dict[str, _Health] = {}

    def upgraded(self) -> _Payload:
        health: dict[str, _Health] = {
            name: (False, None, held, None, None, held) for name, held in self.trigger_since.items()
        }
        health.update(self.health)
        return _Payload(
            series=[(sli, kind, "", state) for sli, kind, state in self.series],
            watermarks=[(source, hi, [(s, k, "", p) for s, k, p in keys]) for source, hi, keys in self.watermarks],
            health=health,
        )


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Payload)
_decoder_v1 = msgspec.msgpack.Decoder(_PayloadV1)


def encode_region(state: RegionState) -> bytes:
    """The bytes of ``state``: magic, then zlib-compressed msgpack, in a stable order."""
    payload = _Payload(
        series=[
            (sli, kind, dim, s.state())
            for (sli, kind), dims in sorted(state.series.items())
            for dim, s in sorted(dims.items())
        ],
        watermarks=[
            (source, hi, sorted(state.flushed.get(source, ())))
            for source, hi in sorted(state.watermarks.items())
        ],
        health={
            k: (m.breached, m.breach_since, m.held_since, m.clear_since, m.no_data_since, m.observed_at)
            for k, m in state.triggers.memory.items()
        },
    )
    return STATE_MAGIC + zlib.compress(_encoder.encode(payload), 1)


def decode_region(spec: Spec, data: bytes, dim_of: Callable[[str, str], str]) -> RegionState:
    """A region state from :func:`encode_region` output (or an ``S2R1`` one); ValueError if it does not fit.

    ``dim_of(sli, stored_dim)`` maps a stored dim through the spec's dimension
    (``Stage2._dim_of``): two stored series landing on one dim do not fit.
    """
    magic, body = data[: len(STATE_MAGIC)], data[len(STATE_MAGIC) :]
    if magic not in (STATE_MAGIC, STATE_MAGIC_V1):
        raise ValueError("not a stage-2 region state")
    try:
        raw = zlib.decompress(body)
        payload = _decoder.decode(raw) if magic == STATE_MAGIC else _decoder_v1.decode(raw).upgraded()
    except (zlib.error, msgspec.DecodeError) as exc:
        raise ValueError(f"corrupt stage-2 region state: {exc}") from exc
    state = RegionState(spec)
    for sli, kind, stored_dim, series_state in payload.series:
        # the spec's dimension decides: "" of an older state is "other" of an opted-in SLI
        dim = dim_of(sli, stored_dim)
        by_dim = state.series.setdefault((sli, kind), {})
        if dim in by_dim:
            raise ValueError(f"stage-2 region state does not match the spec's dimension ({sli} {dim!r} twice)")
        series = by_dim[dim] = Series(spec, sli, kind, dim)
        series.load(series_state)
    for source, hi, keys in payload.watermarks:
        state.watermarks[source] = hi
        state.flushed[source] = {(s, k, d, p) for s, k, d, p in keys}
    for name, fields in payload.health.items():
        state.triggers.memory[name] = Memory(*fields)
    return state
