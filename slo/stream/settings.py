"""Settings of one stream worker (``streamslo worker``), with defaults for freshness <= 5 s.

Example::

    settings = Settings(bootstrap="127.0.0.1:9092", spec=load_spec()[0], web_port=6066)
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from slo.model import Spec
from slo.stage1 import DEFAULT_DEDUP_RECORDS


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs; the CLI maps its flags onto these fields."""

    bootstrap: str
    spec: Spec
    web_port: int = 6066
    web_host: str = "127.0.0.1"
    data_dir: Path = Path("streamslo-data")
    # Cut interval: a partial reaches stage 2 at most this long after its events
    # were read. With the default 2 s pane and 1 s flush, freshness stays under 5 s.
    flush_interval_s: float = 1.0
    beacons_partitions: int = 8
    partials_partitions: int = 6
    dedup_records: int = DEFAULT_DEDUP_RECORDS
    # Low timeouts: a restarted worker gets its partitions back after about this long.
    session_timeout_s: float = 6.0
    # Stage 1 in a child process (default) or in the Faust process (tests, debugging).
    stage1_process: bool = True
    # Copy every skipped record / bundle to conventions.TOPIC_DEAD_LETTER.
    dead_letter: bool = False
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")

    @property
    def client_id(self) -> str:
        return f"streamslo-{self.worker_id}"
