"""End to end: `streamslo run --demo` -> real Prometheus (generated rules) -> real Alertmanager -> PagerDuty sink.

Everything is a real process on 127.0.0.1: the embedded pipeline with demo
traffic (short-window spec ``tests/specs/short.yaml``), Prometheus scraping
and evaluating every second, Alertmanager with the generated config whose
``pagerduty_url`` and ticket webhook point at a small threaded HTTP sink in
this test. A latency incident is switched on in one region through the demo
endpoint; exactly that region's pages must arrive as PagerDuty Events v2
triggers, and after the incident is switched off each page must be resolved
with the same ``dedup_key``. Finally every dashboard panel query must return
data from that Prometheus. About two to three minutes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from slo import conventions as c
from slo.spec import load_spec
from streamslo.generate import Options, generate
from streamslo.testing.ports import free_port
from streamslo.testing.prometheus import Server
from tests.test_embedded import embedded_server

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
SPEC = "tests/specs/short.yaml"
INCIDENT_REGION = "eu-west-1"
HEALTHY_REGION = "us-east-1"
ROUTING_KEY = "e2e-routing-key-0123456789abcdef"
PD_PATH = "/pagerduty/v2/enqueue"
TICKET_PATH = "/tickets"


class Sink:
    """A local HTTP receiver collecting every JSON body POSTed to it, by path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink.lock:
                    sink.received.append((self.path, json.loads(body or b"{}")))
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status":"success","message":"Event processed"}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for p, body in self.received if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[str]:
    """``streamslo run --spec tests/specs/short.yaml --demo`` on a free port; yields its URL."""
    command = f"streamslo run --spec {SPEC} --demo"
    with embedded_server(command, tmp_path / "streamslo-run.log", ready_timeout_s=30) as url:
        yield url


def _wait(check: Callable[[], Any], timeout_s: float, message: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"{message} within {timeout_s:.0f}s")


def _alertmanager_config(text: str) -> str:
    """The generated config with second-scale grouping timers (the only test change)."""
    config = yaml.safe_load(text)
    config["route"].update(group_wait="1s", group_interval="2s", repeat_interval="1h")
    return yaml.safe_dump(config, sort_keys=False)


def _prometheus_config(pipeline_url: str, alertmanager_url: str) -> str:
    return yaml.safe_dump(
        {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["rules.yml"],
            "scrape_configs": [
                {"job_name": "streamslo", "static_configs": [{"targets": [pipeline_url.removeprefix("http://")]}]}
            ],
            "alerting": {
                "alertmanagers": [{"static_configs": [{"targets": [alertmanager_url.removeprefix("http://")]}]}]
            },
        }
    )


def _triggers(sink: Sink) -> list[dict[str, Any]]:
    return [e for e in sink.events(PD_PATH) if e.get("event_action") == "trigger"]


def _query(prom: Server, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prom.url}/api/v1/query", params={"query": expr}, timeout=10)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def test_incident_pages_exactly_its_region_then_resolves_and_dashboards_have_data(
    tmp_path: Path,
    sink: Sink,
    pipeline: str,
    prometheus_server: Callable[..., Server],
    alertmanager_server: Callable[[str], Server],
) -> None:
    spec, _ = load_spec(ROOT / SPEC)
    key_file = tmp_path / "routing_key"
    key_file.write_text(ROUTING_KEY)
    options = Options(
        pagerduty_url=f"{sink.url}{PD_PATH}",
        routing_key_file=str(key_file),
        ticket_webhook_url=f"{sink.url}{TICKET_PATH}",
    )
    files = generate(spec, SPEC, options)
    am = alertmanager_server(_alertmanager_config(files["alertmanager/alertmanager.yml"]))
    prom = prometheus_server(
        _prometheus_config(pipeline, am.url), rule_files={"rules.yml": files["prometheus/rules.yml"]}
    )
    _wait(lambda: _query(prom, 'up{job="streamslo"} == 1'), 30, "Prometheus did not scrape the pipeline")
    # A healthy baseline: both regions report, nothing pages.
    _wait(lambda: len(_query(prom, c.sli_error_record("1m"))) >= 2 * len(spec.slos), 60, "no SLI records")
    time.sleep(10)
    assert _triggers(sink) == [], "a page arrived before any incident"

    httpx.post(f"{pipeline}/api/demo/incident", params={"region": INCIDENT_REGION, "on": 1}, timeout=5).raise_for_status()
    started = time.monotonic()

    def fast_page() -> list[dict[str, Any]]:
        return [
            e
            for e in _triggers(sink)
            if e["payload"].get("class") == "StreamSLOErrorBudgetBurnFast" and e["payload"].get("component") == "ttff-p95"
        ]

    pages = _wait(fast_page, 150, "the fast-tier ttff-p95 page did not arrive")
    detected_s = time.monotonic() - started
    time.sleep(5)  # let the other pages of the incident (p99, failover) arrive too
    httpx.post(f"{pipeline}/api/demo/incident", params={"region": INCIDENT_REGION, "on": 0}, timeout=5).raise_for_status()

    triggers = _triggers(sink)
    for event in triggers:
        assert event["routing_key"] == ROUTING_KEY
        assert event["dedup_key"]
        payload = event["payload"]
        assert payload["source"] == INCIDENT_REGION, payload
        assert payload["severity"] in ("critical", "error", "warning", "info")
        assert INCIDENT_REGION in payload["summary"] and HEALTHY_REGION not in payload["summary"]
        details = json.dumps(payload.get("custom_details", {}))
        assert f"region = {INCIDENT_REGION}" in details and "severity = page" in details
    page = pages[0]
    assert "tier = fast" in json.dumps(page["payload"]["custom_details"])

    # Every page of the incident is resolved with its own dedup_key.
    dedup_keys = {e["dedup_key"] for e in triggers}

    def all_resolved() -> bool:
        resolved = {e["dedup_key"] for e in sink.events(PD_PATH) if e.get("event_action") == "resolve"}
        return dedup_keys <= resolved

    _wait(all_resolved, 150, f"not every page was resolved ({len(dedup_keys)} pages)")
    assert all(e["payload"]["source"] == INCIDENT_REGION for e in _triggers(sink)), "a healthy region paged"
    print(f"\nE2E: first fast-tier page {detected_s:.0f}s after the incident; {len(dedup_keys)} pages, all resolved")

    # Every dashboard panel query returns data from this Prometheus.
    empty = []
    for rel, text in files.items():
        if not (rel.startswith("grafana/dashboards/") and rel.endswith(".json")):
            continue
        for panel in json.loads(text)["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"].replace("$region", INCIDENT_REGION)
                if not _query(prom, expr):
                    empty.append(f"{rel}: {panel['title']}: {expr}")
    assert empty == [], "panels without data:\n" + "\n".join(empty)
