"""A stream worker's self-metrics (``slo.stream.metrics.StreamCollector``), read from a fake state."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from slo import conventions as c
from slo.spec import load_spec
from slo.stage1 import Stage1Counters, Stage1Stats
from slo.stage2 import Stage2
from slo.stream.metrics import StreamCollector


@dataclass
class FakeState:
    """Exactly what the StreamState protocol asks for."""

    stage2: Stage2
    partials_lag: dict[int, int] = field(default_factory=dict)
    stats: Stage1Stats = field(default_factory=Stage1Stats)

    def stage1_stats(self) -> Stage1Stats:
        return self.stats


def _exposition(state: FakeState, skipped_bundles: dict[str, int] | None) -> str:
    registry = CollectorRegistry()
    registry.register(StreamCollector(state, skipped_bundles=skipped_bundles))
    return generate_latest(registry).decode()


def _state() -> FakeState:
    counters = Stage1Counters(duplicates=3, events=40, late_events=2, partials=5,
                              skipped_records={c.REASON_MALFORMED: 1}, dropped_events={c.REASON_EVENT_IN_FUTURE: 4})
    return FakeState(stage2=Stage2(load_spec()[0]), partials_lag={0: 7},
                     stats=Stage1Stats(counters=counters, lag={1: 11}, failed_cuts=1))


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(f'{c.METRIC_STREAM_LAG}{{{c.LABEL_PARTITION}="1",{c.LABEL_STAGE}="1"}} 11.0', id="stage-1 lag per beacons partition"),
        pytest.param(f'{c.METRIC_STREAM_LAG}{{{c.LABEL_PARTITION}="0",{c.LABEL_STAGE}="2"}} 7.0', id="stage-2 lag per partials partition"),
        pytest.param(f"{c.METRIC_STREAM_DUPLICATES} 3.0", id="duplicates dropped by stage 1"),
        pytest.param(f'{c.METRIC_STREAM_PARTIALS}{{{c.LABEL_OUTCOME}="applied",{c.LABEL_STAGE}="2"}} 0.0', id="partials applied by a fresh stage 2"),
        pytest.param(f'{c.METRIC_STREAM_PARTIALS}{{{c.LABEL_OUTCOME}="produced",{c.LABEL_STAGE}="1"}} 5.0', id="partials produced by stage 1"),
        pytest.param(f'{c.METRIC_STREAM_SKIPPED}{{{c.LABEL_REASON}="{c.REASON_MALFORMED}",{c.LABEL_STAGE}="1"}} 1.0', id="records skipped by stage 1"),
        pytest.param(f'{c.METRIC_STREAM_SKIPPED}{{{c.LABEL_REASON}="{c.REASON_MALFORMED}",{c.LABEL_STAGE}="2"}} 6.0', id="bundles skipped by stage 2"),
        pytest.param(f'{c.METRIC_STREAM_DROPPED_EVENTS}{{{c.LABEL_REASON}="{c.REASON_EVENT_IN_FUTURE}"}} 4.0', id="events dropped for their event time"),
        pytest.param(f"{c.METRIC_STREAM_FAILED_CUTS} 1.0", id="failed stage-1 cuts"),
    ],
)
def test_a_worker_state_is_exposed_as_its_counters(line: str) -> None:
    assert line in _exposition(_state(), {c.REASON_MALFORMED: 6}).splitlines()


def test_without_stage2_bundles_no_stage2_skips_are_exposed() -> None:
    skips = [line for line in _exposition(_state(), None).splitlines() if line.startswith(c.METRIC_STREAM_SKIPPED)]
    assert skips and not [line for line in skips if f'{c.LABEL_STAGE}="2"' in line]
