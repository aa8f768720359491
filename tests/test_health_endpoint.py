"""The health route of ``streamslo run`` in process (the real-process runs are in test_health_e2e.py)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from slo import conventions as c
from slo.spec import load_spec
from streamslo.embedded import build_app

CASES = [
    pytest.param("eu-west-1", 200, "SLO_OK", c.HEALTH_OK, id="a region without data yet answers its on_no_data: 200 SLO_OK"),
    pytest.param("mars-north-1", 404, "UNKNOWN_REGION", c.HEALTH_UNKNOWN_REGION, id="a region not in the spec is 404 and named"),
]


@pytest.mark.parametrize(("region", "status", "marker", "outcome"), CASES)
def test_health_route(region: str, status: int, marker: str, outcome: str) -> None:
    registry = CollectorRegistry()
    app, _ = build_app(load_spec()[0], registry=registry)
    with TestClient(app) as client:
        r = client.get(c.HEALTH_PATH.format(region=region))
    assert r.status_code == status
    first, rest = r.text.split("\n", 1)
    assert first == marker
    doc = json.loads(rest)
    if status == 404:
        assert region in doc["detail"] and doc["detail"].startswith("region: ")
    else:
        assert doc["region"] == region and {t["trigger"] for t in doc["triggers"]} == {"scale_out", "failover"}
    assert registry.get_sample_value(c.METRIC_HEALTH_REQUESTS, {c.LABEL_OUTCOME: outcome}) == 1.0
