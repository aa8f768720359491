"""Collector configuration: one dataclass with defaults and a ``validate()``.

Use :meth:`CollectorConfig.from_spec` in the distributed collector (regions
from the SLO spec, ingest keys from a file and/or ``STREAMSLO_INGEST_KEYS``);
build one directly in the embedded mode and tests, usually with
``require_key=False``.

>>> cfg = CollectorConfig(regions=("eu-west-1",), require_key=False)
>>> cfg.validate()
>>> cfg.map_region("mars-1")
'other'
>>> cfg.map_dimension({"cdn": "fastly"})   # the spec declares no dimension
''
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from slo import conventions as c
from slo import limits
from slo.model import Dimension, Spec

ENV_KEYS = "STREAMSLO_INGEST_KEYS"
MIN_KEY_LENGTH = 8


class ConfigError(ValueError):
    """The collector configuration is not usable; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid collector config: " + "; ".join(problems))


@dataclass(frozen=True)
class CollectorConfig:
    """Everything the ingest endpoint needs to decide on a request.

    ``rate_per_key`` is beacons per second per ingest key and per worker
    process (0 disables the limit); ``burst_per_key`` is the bucket size.
    """

    regions: tuple[str, ...] = ()
    keys: frozenset[str] = field(default_factory=frozenset)
    require_key: bool = True
    max_body_bytes: int = limits.MAX_BODY_BYTES
    max_event_age_s: float = limits.MAX_EVENT_AGE_S
    max_future_s: float = limits.MAX_FUTURE_S
    rate_per_key: float = 20_000.0
    burst_per_key: float = 40_000.0
    cors_origins: tuple[str, ...] = ()
    retry_after_s: int = 2
    # The spec's extra dimension: which beacon `dimensions` key to keep, and its allow-list.
    dimension: Dimension | None = None

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming every problem; return None when usable."""
        problems: list[str] = []
        if self.require_key and not self.keys:
            problems.append(f"require_key is set but no ingest keys are configured ({ENV_KEYS} or --keys)")
        short = sum(1 for k in self.keys if len(k) < MIN_KEY_LENGTH)
        if short:
            problems.append(f"{short} ingest key(s) shorter than {MIN_KEY_LENGTH} characters")
        if any(k != k.strip() or not k.isprintable() for k in self.keys):
            problems.append("ingest keys must be printable without surrounding whitespace")
        if not 1024 <= self.max_body_bytes <= 64 << 20:
            problems.append("max_body_bytes must be between 1 KiB and 64 MiB")
        if self.max_event_age_s <= 0 or self.max_future_s < 0:
            problems.append("max_event_age_s must be > 0 and max_future_s >= 0")
        if self.rate_per_key < 0 or (self.rate_per_key > 0 and self.burst_per_key < 1):
            problems.append("rate_per_key must be >= 0 and burst_per_key >= 1 when limiting")
        if self.retry_after_s < 1:
            problems.append("retry_after_s must be >= 1")
        if c.REGION_OTHER in self.regions:
            problems.append(f"regions must not list {c.REGION_OTHER!r}: it is the catch-all")
        if problems:
            raise ConfigError(problems)

    def map_region(self, region: str) -> str:
        """The region label for a reported region: itself if allow-listed, else ``other``."""
        return region if region in self._region_set else c.REGION_OTHER

    def map_dimension(self, dimensions: Mapping[str, str]) -> str:
        """The dimension value of a beacon's ``dimensions``: ``""`` when the spec declares none,
        the reported value if allow-listed, else ``other`` (also when absent); other keys are ignored.
        """
        if self.dimension is None:
            return ""
        return self.dimension.map(dimensions.get(self.dimension.name))

    @property
    def _region_set(self) -> frozenset[str]:
        # frozen dataclass: cache by hand on first use
        cached: frozenset[str] | None = self.__dict__.get("_regions_cache")
        if cached is None:
            cached = frozenset(self.regions)
            object.__setattr__(self, "_regions_cache", cached)
        return cached

    @classmethod
    def from_spec(
        cls,
        spec: Spec,
        *,
        keys_file: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> CollectorConfig:
        """Regions and dimension from ``spec``, keys from ``keys_file`` plus ``$STREAMSLO_INGEST_KEYS``."""
        keys = load_keys(keys_file, os.environ if env is None else env)
        return replace(cls(regions=tuple(spec.regions), keys=keys, dimension=spec.dimension), **overrides)


def load_keys(keys_file: str | Path | None, env: Mapping[str, str]) -> frozenset[str]:
    """Ingest keys: one per line in ``keys_file`` (``#`` comments) and comma-separated in env."""
    keys: set[str] = set()
    if keys_file is not None:
        for line in Path(keys_file).read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                keys.add(line)
    keys.update(k.strip() for k in env.get(ENV_KEYS, "").split(",") if k.strip())
    return frozenset(keys)
