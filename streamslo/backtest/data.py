"""The replay file format shared by ``simulate``, ``record``, ``run --record`` and ``backtest``.

A gzip file of JSON lines (``docs/backtest.md``):

- line 1, the header: ``{"streamslo_replay": 1, "start": 1764000000.0, "end": ...,
  "source": "simulate:launch-spike" | "record:..." | "run", "seed": 7 | null,
  "incidents": [{"name", "region", "start_s", "end_s"}]}``; incident times are
  seconds from ``start``;
- every further line: one accepted beacon exactly as the collector hands it
  on (the value of a ``beacons`` record, :func:`slo.beacon.encode`): wire
  format v1 after the collector's checks and clock correction, with
  ``received_at``. Lines are in arrival order.

A sidecar ``--incidents FILE`` (plain JSON ``{"incidents": [...]}``, same
shape) replaces the header's incidents: label a recording after the fact.

Example::

    with ReplayWriter(path, Header(start=t0, source="simulate:diurnal")) as out:
        out.write(beacon)
    header, beacons = read(path)     # beacons: an iterator of slo.beacon.Beacon
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import msgspec

from slo.beacon import Beacon, encode

__all__ = ["FORMAT_VERSION", "Header", "Incident", "RecordingSink", "ReplayWriter", "load_incidents", "read",
           "read_header"]

FORMAT_VERSION = 1
_decoder = msgspec.json.Decoder(Beacon)


@dataclass(frozen=True)
class Incident:
    """A labelled incident: ``region`` ("*" for all) from ``start_s`` to ``end_s`` after the data's start."""

    name: str
    region: str
    start_s: float
    end_s: float

    def covers(self, region: str) -> bool:
        return self.region in ("*", region)


@dataclass
class Header:
    """The first line of a replay file."""

    start: float
    source: str
    end: float | None = None
    seed: int | None = None
    incidents: list[Incident] = field(default_factory=list)

    def to_json(self) -> str:
        body = asdict(self)
        return json.dumps({"streamslo_replay": FORMAT_VERSION, **body}, sort_keys=True)

    @classmethod
    def from_json(cls, line: str | bytes) -> Header:
        text = line.decode(errors="replace") if isinstance(line, bytes) else line
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or doc.get("streamslo_replay") != FORMAT_VERSION:
            raise ValueError(f"not a streamslo replay file (first line {text.strip()[:80]!r})")
        return cls(
            start=float(doc["start"]),
            source=str(doc.get("source", "")),
            end=None if doc.get("end") is None else float(doc["end"]),
            seed=doc.get("seed"),
            incidents=_incidents(doc.get("incidents") or []),
        )


def _incidents(items: list[dict[str, Any]]) -> list[Incident]:
    out = []
    for i, item in enumerate(items):
        try:
            out.append(Incident(str(item["name"]), str(item.get("region", "*")),
                                float(item["start_s"]), float(item["end_s"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"incidents[{i}]: {exc!r}") from None
    return out


class ReplayWriter:
    """Write a replay file: the header, then one beacon per line (gzip)."""

    def __init__(self, path: str | Path, header: Header, *, append: bool = False) -> None:
        path = Path(path)
        # Appending to an existing recording adds a gzip member; readers see one stream.
        existing = append and path.exists() and path.stat().st_size > 0
        # mtime=0: the same beacons give the same bytes (a seeded simulation is reproducible).
        self._raw = path.open("ab" if existing else "wb")  # closed by close()
        self._file = gzip.GzipFile(filename="", fileobj=self._raw, mode="wb", compresslevel=1, mtime=0)
        if not existing:
            self._file.write(header.to_json().encode() + b"\n")
        self.count = 0

    def write(self, beacon: Beacon) -> None:
        self._file.write(encode(beacon) + b"\n")
        self.count += 1

    def write_encoded(self, data: bytes) -> None:
        """One beacon already encoded (a ``beacons`` record value)."""
        self._file.write(data.rstrip(b"\n") + b"\n")
        self.count += 1

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()
        self._raw.close()

    def __enter__(self) -> ReplayWriter:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def read_header(path: str | Path) -> Header:
    """Only the header of a replay file."""
    with gzip.open(path, "rb") as f:
        return Header.from_json(f.readline())


def read(path: str | Path) -> tuple[Header, Iterator[Beacon]]:
    """The header and an iterator over the beacons (decoded lazily, in file order)."""
    header = read_header(path)
    return header, _beacons(path)


def _beacons(path: str | Path) -> Iterator[Beacon]:
    with gzip.open(path, "rb") as f:
        f.readline()
        for n, line in enumerate(f, start=2):
            if not line.strip():
                continue
            try:
                yield _decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise ValueError(f"{path}: line {n}: not a beacon: {exc}") from None


def load_incidents(path: str | Path) -> list[Incident]:
    """Incidents from a sidecar JSON file ``{"incidents": [...]}``."""
    doc = json.loads(Path(path).read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("incidents"), list):
        raise ValueError(f"{path}: expected an object with a list 'incidents'")
    return _incidents(doc["incidents"])


class RecordingSink:
    """A beacon sink that also appends each beacon to a replay file: ``streamslo run --record FILE``.

    Wraps the in-process exporter's sink (the engine's), so only beacons the
    collector accepted are written, after the engine took them. The gzip
    stream is flushed at most once a second (a killed process loses at most
    that much); an existing file is appended to (its header stays).

    Example::

        sink = RecordingSink(engine.sink, "live.jsonl.gz")
        InProcessExporter(sink)
        ...
        sink.close()
    """

    def __init__(self, sink: Callable[[Beacon], None], path: str | Path, *, clock: Callable[[], float] = time.time,
                 flush_every_s: float = 1.0) -> None:
        self._sink = sink
        self._clock = clock
        self._writer = ReplayWriter(path, Header(start=clock(), source="run"), append=True)
        self._every = flush_every_s
        self._flushed_at = clock()

    def __call__(self, beacon: Beacon) -> None:
        self._sink(beacon)
        self._writer.write(beacon)
        now = self._clock()
        if now - self._flushed_at >= self._every:
            self._writer.flush()
            self._flushed_at = now

    @property
    def count(self) -> int:
        return self._writer.count

    def close(self) -> None:
        self._writer.close()
