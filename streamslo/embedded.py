"""``streamslo run``: the embedded all-in-one (collector + engine + /metrics + status page).

One process, no Kafka, no Docker. The collector app (``collector/app.py``)
takes beacons at ``POST /v1/beacons`` and hands them to the in-process engine
(``streamslo/engine.py``: the same stage-1/stage-2 code the Faust workers
run); ``/metrics`` serves the collector's and the engine's metrics from one
registry, with the names of the distributed mode; ``/`` is the status page.

When to use: trying streamslo, a single-host deployment, tests. For more
traffic than one core handles, run the distributed roles (``docker-compose.yml``).

Example::

    streamslo run --demo                       # http://127.0.0.1:8080/
    streamslo run --spec my.yaml --port 9000
    streamslo run --demo --incident eu-west-1  # start with an incident in eu-west-1
    streamslo run --keys keys.txt --cors-origin http://localhost:3000  # a player in dev
    curl -X POST 'http://127.0.0.1:8080/api/demo/incident?region=eu-west-1&on=0'
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from fastapi import FastAPI, HTTPException, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CollectorRegistry, Counter

from collector.app import INGEST_PATH, create_app
from collector.asgi import Scope, Send
from collector.config import ENV_KEYS, CollectorConfig, ConfigError, load_keys
from collector.exporters import InProcessExporter
from collector.keys import HEADER as KEY_HEADER
from collector.keys import QUERY_PARAM as KEY_PARAM
from collector.validation import Receive
from slo import conventions as c
from slo import health
from slo.exposition import EngineCollector
from slo.model import Spec
from slo.spec import DEFAULT_SPEC_PATH, SpecError, load_spec_for_cli
from slo.stream.metrics import StreamCollector
from streamslo.backtest.data import RecordingSink
from streamslo.demo import DemoTraffic
from streamslo.engine import Engine
from streamslo.status import mount_status

log = logging.getLogger("streamslo.embedded")


def build_app(
    spec: Spec,
    *,
    demo: bool = False,
    incidents: Sequence[str] = (),
    flush_interval_s: float = 0.5,
    demo_beacons_per_s: float = 8.0,
    registry: CollectorRegistry | None = None,
    keys: frozenset[str] = frozenset(),
    cors_origins: Sequence[str] = (),
    record: str | None = None,
) -> tuple[FastAPI, Engine]:
    """Assemble the embedded app; its lifespan runs the engine (and the demo traffic).

    With ``keys``, beacons must carry one of them (as in ``streamslo collector``);
    without, any beacon is taken, with or without a key (a production SDK's key
    is ignored, not refused). Raises ``ConfigError`` for unusable keys. With
    ``record``, every accepted beacon is also appended to that replay file
    (``streamslo/backtest/data.py``).
    """
    registry = registry if registry is not None else CollectorRegistry()
    engine = Engine(spec, flush_interval_s=flush_interval_s)
    config = CollectorConfig(regions=tuple(spec.regions), keys=keys, require_key=bool(keys),
                             cors_origins=tuple(cors_origins), dimension=spec.dimension)
    recorder = RecordingSink(engine.sink, record) if record else None
    app = create_app(config, InProcessExporter(recorder or engine.sink), registry)
    if not keys:
        app.ingest = _KeyIgnored(app.ingest)  # type: ignore[attr-defined]
    registry.register(EngineCollector(engine.snapshot, spec))
    # The worker's self-metrics (duplicates, late events, lag) read the same engine.
    registry.register(StreamCollector(engine))
    mount_status(app, engine.status)
    _add_health_route(app, spec, engine, registry)

    traffic: DemoTraffic | None = None
    client: httpx.AsyncClient | None = None
    if demo:
        # The demo POSTs through the app itself (ASGI, no socket): the same
        # validation and enrichment as a real player's beacon.
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://embedded")

        demo_headers = {KEY_HEADER.decode(): min(keys)} if keys else {}

        async def send(beacon: dict[str, Any]) -> int:
            return (await client.post(INGEST_PATH, json=beacon, headers=demo_headers)).status_code

        traffic = DemoTraffic(spec.regions, send, beacons_per_s=demo_beacons_per_s, dimension=spec.dimension)
        for region in incidents:
            traffic.set_incident(region, True)
        engine.incidents = lambda: traffic.incidents if traffic else set()
        _add_demo_routes(app, traffic)

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            tasks = [asyncio.create_task(engine.run(), name="engine-flush")]
            if traffic is not None:
                tasks.append(asyncio.create_task(traffic.run(), name="demo-traffic"))
            try:
                yield state
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                if client is not None:
                    await client.aclose()
                if recorder is not None:
                    recorder.close()

    app.router.lifespan_context = lifespan
    app.state.engine = engine
    app.state.demo = traffic
    return app, engine


class _KeyIgnored:
    """The ingest endpoint with the request's ingest key removed (no keys configured).

    The collector refuses a key it does not know (401); the embedded server
    without keys must take a production SDK's beacons all the same.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k != KEY_HEADER]
        query = scope.get("query_string", b"")
        if query:
            pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
            query = urlencode([(k, v) for k, v in pairs if k != KEY_PARAM]).encode("latin-1")
        await self.inner({**scope, "headers": headers, "query_string": query}, receive, send)


def _add_health_route(app: FastAPI, spec: Spec, engine: Engine, registry: CollectorRegistry) -> None:
    """``GET /v1/regions/{region}/health`` for DNS health checks (``slo/health.py``)."""
    answers = Counter(c.METRIC_HEALTH_REQUESTS.removesuffix("_total"), "Region health answers by outcome.",
                      [c.LABEL_OUTCOME], registry=registry)

    @app.get(c.HEALTH_PATH, tags=["health"], response_class=PlainTextResponse)
    async def region_health(region: str) -> Response:
        """200 ``SLO_OK`` or 503 ``SLO_BREACH``, then JSON (triggers, since when, figures); 404 unknown region."""
        status, body, outcome = health.answer(spec, region, engine.stage2.health_report(region), engine.clock())
        answers.labels(outcome).inc()
        return PlainTextResponse(body, status_code=status)


def _add_demo_routes(app: FastAPI, traffic: DemoTraffic) -> None:
    @app.get("/api/demo", tags=["demo"])
    async def demo_state() -> dict[str, Any]:
        """Demo traffic: regions, incidents switched on, beacons sent."""
        return {"regions": list(traffic.regions), "incidents": sorted(traffic.incidents), "sent": traffic.sent}

    @app.post("/api/demo/incident", tags=["demo"])
    async def demo_incident(region: str, on: int = 1) -> dict[str, Any]:
        """Switch the demo incident in ``region`` on (``on=1``) or off (``on=0``)."""
        try:
            traffic.set_incident(region, bool(on))
        except KeyError:
            raise HTTPException(status_code=400, detail=f"unknown region {region!r}; demo regions: {', '.join(traffic.regions)}") from None
        log.warning("demo incident in %s switched %s", region, "on" if on else "off")
        return {"incidents": sorted(traffic.incidents)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="streamslo run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default=str(DEFAULT_SPEC_PATH), help="SLO spec file (default: the built-in spec)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    parser.add_argument("--demo", action="store_true", help="add synthetic traffic for every region of the spec")
    parser.add_argument("--incident", action="append", default=[], metavar="REGION",
                        help="start the demo with an incident in REGION (repeatable; implies --demo)")
    parser.add_argument("--demo-rate", type=float, default=8.0, help="demo beacons per second per region (default 8)")
    parser.add_argument("--flush-interval", type=float, default=0.5, help="engine flush period in seconds (default 0.5)")
    parser.add_argument("--keys", default=None, metavar="FILE",
                        help=f"ingest keys, one per line (also ${ENV_KEYS}); beacons must then carry one")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="URL",
                        help="browser origin allowed to send beacons (repeatable), e.g. a player in dev")
    parser.add_argument("--record", default=None, metavar="FILE",
                        help="also append every accepted beacon to this replay file (streamslo backtest --data)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)

    try:
        spec, problems = load_spec_for_cli("run", args.spec)
    except SpecError as exc:
        print(f"streamslo run: {exc}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"{args.spec}: {problem}", file=sys.stderr)
    unknown = [r for r in args.incident if r not in spec.regions]
    if unknown:
        print(f"streamslo run: --incident {unknown[0]!r} is not a region of the spec ({', '.join(spec.regions)})", file=sys.stderr)
        return 2
    if not 0.05 <= args.flush_interval <= 10:
        print("streamslo run: --flush-interval must be between 0.05 and 10 seconds", file=sys.stderr)
        return 2

    try:
        keys = load_keys(args.keys, os.environ)
        CollectorConfig(keys=keys, require_key=bool(keys)).validate()
    except (OSError, ConfigError) as exc:
        print(f"streamslo run: {exc}", file=sys.stderr)
        return 2
    if not keys and args.host not in ("127.0.0.1", "localhost", "::1"):
        # Without keys the embedded collector takes any beacon.
        print(f"streamslo run: warning: listening on {args.host} without ingest keys; "
              "anyone who can reach it can send beacons", file=sys.stderr)

    import uvicorn  # imported here so `streamslo run --help` stays fast

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The demo's in-process requests would log one line per beacon.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    demo = args.demo or bool(args.incident)
    app, _ = build_app(spec, demo=demo, incidents=args.incident, flush_interval_s=args.flush_interval,
                       demo_beacons_per_s=args.demo_rate, keys=keys, cors_origins=args.cors_origin,
                       record=args.record)
    base = f"http://{args.host}:{args.port}"
    print(f"streamslo run: spec {spec.name!r} ({len(spec.slos)} SLOs, regions {', '.join(spec.regions)})"
          f"{', demo traffic on' if demo else ''}{f', {len(keys)} ingest key(s)' if keys else ''}\n"
          f"  status page  {base}/\n  metrics      {base}/metrics\n  beacons      POST {base}{INGEST_PATH}",
          flush=True)
    from collector.fastpath import IngestProtocol  # POST /v1/beacons without an ASGI task

    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                http=IngestProtocol)
    return 0
