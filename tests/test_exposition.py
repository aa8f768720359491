"""Prometheus exposition: scrape the collector's text output and parse it back."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from slo import conventions as c
from slo.exposition import EngineCollector
from slo.model import Spec
from slo.spec import load_spec
from slo.stage2 import Snapshot, Stage2
from tests.test_windows import make_partial

Scraped = tuple[Snapshot, dict[str, list[Sample]]]
T0 = 1_764_000_000.0
NOW = T0 + 31.0
REGIONS = ("eu-west-1", "us-east-1")


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec()[0]


@pytest.fixture(scope="module")
def scraped(spec: Spec) -> tuple[Snapshot, dict[str, list[Sample]]]:
    stage2 = Stage2(spec)
    rng = np.random.default_rng(3)
    hi = 0
    for step in range(15):
        for i, region in enumerate(REGIONS):
            for kind in c.KINDS:
                hi += 1
                values = rng.lognormal(math.log(0.05 * (i + 1)), 0.5, 50)
                stage2.apply(make_partial(spec, values, pane_start=T0 + 2 * step, region=region, kind=kind, hi=hi))
                stage2.apply(make_partial(
                    spec, [], pane_start=T0 + 2 * step, region=region, kind=kind, hi=hi,
                    sli=c.SLI_ERRORS, attempts=50, errors=i,
                ))
    stage2.apply(make_partial(spec, [0.1], pane_start=T0, region="sa-east-1", hi=1))
    stage2.drop_region("sa-east-1")  # revoked: must not be exported
    registry = CollectorRegistry()
    snapshot = stage2.snapshot(NOW)
    registry.register(EngineCollector(lambda: snapshot, spec))
    text = generate_latest(registry).decode()
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return snapshot, samples


def find(samples: list[Sample], **labels: str) -> list[Sample]:
    return [s for s in samples if all(s.labels.get(k) == v for k, v in labels.items())]


def test_histogram_buckets_use_client_python_le_strings_and_exact_counts(spec: Spec, scraped: Scraped) -> None:
    snapshot, samples = scraped
    for region in REGIONS:
        series = snapshot.regions[region].series[(c.SLI_TTFF, c.KIND_RUM)]
        buckets = find(samples[c.METRIC_LATENCY_BUCKET], region=region, sli=c.SLI_TTFF, kind=c.KIND_RUM)
        assert [s.labels["le"] for s in buckets] == [
            "0.025", "0.05", "0.1", "0.15", "0.2", "0.25", "0.3", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf",
        ]
        assert [int(s.value) for s in buckets] == [*series.le_counts, series.count]
        (count,) = find(samples[c.METRIC_LATENCY_COUNT], region=region, sli=c.SLI_TTFF, kind=c.KIND_RUM)
        assert count.value == series.count == 15 * 50
        (total,) = find(samples[c.METRIC_LATENCY_SUM], region=region, sli=c.SLI_TTFF, kind=c.KIND_RUM)
        assert math.isclose(total.value, series.sum_s, rel_tol=1e-12)


@pytest.mark.parametrize(
    ("name", "labels", "count"),
    [
        (c.METRIC_LATENCY_QUANTILE, {"region", "sli", "kind", "quantile", "window"}, 2 * 2 * 4 * 3),
        (c.METRIC_ATTEMPTS, {"region", "kind"}, 2 * 2),
        (c.METRIC_ERRORS, {"region", "kind"}, 2 * 2),
        (c.METRIC_BURN_RATE, {"region", "slo", "window"}, lambda spec: 2 * len(spec.slos) * 8),
        (c.METRIC_BUDGET_REMAINING, {"region", "slo"}, lambda spec: 2 * len(spec.slos)),
        (c.METRIC_TRIGGER_ACTIVE, {"region", "trigger"}, 2 * 2),
        (c.METRIC_STREAM_FRESHNESS, {"region"}, 2),
    ],
    ids=[
        "quantile gauges for 2 regions x 2 kinds x 4 quantiles x 3 windows",
        "attempts counters per region and kind",
        "errors counters per region and kind",
        "burn rates for every SLO x 8 windows (tier windows and the period)",
        "budget remaining per region and SLO",
        "trigger conditions per region and trigger",
        "freshness per region",
    ],
)
def test_every_metric_has_its_labels_and_only_live_regions(
    spec: Spec, scraped: Scraped, name: str, labels: set[str], count: int | Callable[[Spec], int]
) -> None:
    _, samples = scraped
    got = samples[name]
    assert len(got) == (count(spec) if callable(count) else count)
    assert all(set(s.labels) == labels for s in got)
    assert {s.labels["region"] for s in got} == set(REGIONS)


def test_label_values_and_numbers_match_the_snapshot(scraped: Scraped) -> None:
    snapshot, samples = scraped
    quantiles = samples[c.METRIC_LATENCY_QUANTILE]
    assert {s.labels["quantile"] for s in quantiles} == {"0.5", "0.9", "0.95", "0.99"}
    assert {s.labels["window"] for s in quantiles} == {"1m", "5m", "1h"}
    (p95,) = find(quantiles, region="us-east-1", sli="ttff", kind="rum", quantile="0.95", window="5m")
    assert p95.value == snapshot.regions["us-east-1"].series[("ttff", "rum")].quantiles[300.0][0.95]
    burn = samples[c.METRIC_BURN_RATE]
    assert {s.labels["window"] for s in burn} == {"5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"}
    (errors_burn,) = find(burn, region="us-east-1", slo="errors", window="1h")
    assert errors_burn.value == pytest.approx((1 / 50) / 0.01)  # 1 error per 50 rum attempts
    (attempts,) = find(samples[c.METRIC_ATTEMPTS], region="us-east-1", kind="probe")
    assert attempts.value == 15 * 50
    (remaining,) = find(samples[c.METRIC_BUDGET_REMAINING], region="eu-west-1", slo="errors")
    assert remaining.value == 1.0  # no errors in eu-west-1
    (fresh,) = find(samples[c.METRIC_STREAM_FRESHNESS], region="eu-west-1")
    assert fresh.value == pytest.approx(NOW - (T0 + 28 + 1))
    # us-east-1 has 2 % errors on >= 20 attempts in the last minute: the failover condition holds
    triggers = {(s.labels["region"], s.labels["trigger"]): s.value for s in samples[c.METRIC_TRIGGER_ACTIVE]}
    assert triggers[("us-east-1", "failover")] == 1.0
    assert triggers[("eu-west-1", "failover")] == 0.0


def test_registering_does_not_call_the_source(spec: Spec) -> None:
    def boom() -> Snapshot:
        raise AssertionError("source called at registration")

    registry = CollectorRegistry(auto_describe=True)
    registry.register(EngineCollector(boom, spec))
    empty = CollectorRegistry()
    empty.register(EngineCollector(lambda: Snapshot(now=0.0, regions={}), spec))
    assert "streamslo_latency_seconds_bucket" not in generate_latest(empty).decode()
