"""The worker's health service without a broker: it answers only from what it read, and skips bad records."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from slo import conventions as c
from slo.spec import load_spec
from slo.stage2 import Stage2
from slo.stream.health import HealthService
from slo.stream.settings import Settings
from tests.test_health import _breached_stage2
from tests.test_stage2 import EU


@pytest.fixture
def service() -> tuple[HealthService, CollectorRegistry, Stage2, float]:
    spec = load_spec()[0]
    stage2, now = _breached_stage2(spec, 320)
    registry = CollectorRegistry()
    return HealthService(Settings(bootstrap="unused:9092", spec=spec), stage2, registry), registry, stage2, now


def test_local_state_alone_does_not_answer(service: tuple[HealthService, CollectorRegistry, Stage2, float]) -> None:
    svc, _, _, now = service
    status, body, _ = svc.answer(EU, now)  # breached locally, but nothing read from slo-health yet
    assert status == 200 and body.startswith("SLO_OK")


def test_a_read_report_gives_the_owners_answer(service: tuple[HealthService, CollectorRegistry, Stage2, float]) -> None:
    svc, registry, stage2, now = service
    report = stage2.health_report(EU)
    assert report is not None
    svc._read(report.to_json())
    status, body, outcome = svc.answer(EU, now)
    assert (status, outcome) == (503, c.HEALTH_BREACH) and body.startswith("SLO_BREACH")
    assert registry.get_sample_value(c.METRIC_HEALTH_REQUESTS, {c.LABEL_OUTCOME: c.HEALTH_BREACH}) == 1.0


BAD = [
    pytest.param(b"not json", id="a record that is not JSON is skipped and counted"),
    pytest.param(b'{"region": "eu-west-1"}', id="a record missing fields is skipped and counted"),
    pytest.param(None, id="a tombstone (no value) is skipped and counted"),
]


@pytest.mark.parametrize("value", BAD)
def test_bad_records_are_skipped_and_counted(
    service: tuple[HealthService, CollectorRegistry, Stage2, float], value: bytes | None
) -> None:
    svc, registry, _, _ = service
    svc._read(value)
    assert svc.reports == {}
    assert registry.get_sample_value(c.METRIC_HEALTH_BAD_RECORDS) == 1.0
