"""The Faust stream worker: stage 1 (beacons -> partials) and stage 2 (partials -> /metrics).

Use :func:`build_app` to get a configured ``faust.App``; ``streamslo worker``
(``slo/stream/cli.py``) runs it. The app is a thin adapter:

- stage 1 is :class:`slo.stream.stage1_runner.Stage1Runner` (its own aiokafka
  consumer, see that module for why), run in a child process
  (:class:`slo.stream.stage1_process.Stage1Process`) whose counters and lag
  this process polls; ``Settings.stage1_process=False`` (``--stage1-in-process``)
  runs it as an app task here instead (tests, debugging);
- stage 2 is a Faust agent (concurrency 1) on ``slo-partials``. Each message is
  one region's bundle from one stage-1 cut; it is applied to
  :class:`slo.stage2.Stage2` (idempotent by per-(region, source) watermark)
  and the region's whole state is written to the changelogged table
  ``stage2-regions`` once per message, never per event;
- on partition revocation stage 2 drops the regions of revoked partitions,
  so ``/metrics`` stops exporting them; regions of newly assigned partitions
  are loaded from the table once Faust's recovery has finished;
- ``/metrics`` (Faust's web server, on the event loop, so scrapes never race
  the agent) serves :class:`slo.exposition.EngineCollector` plus self-metrics;
- tracing (``docs/telemetry.md``) is set up from ``OTEL_*`` as
  ``streamslo-worker``; each bundle is applied inside a ``streamslo.stage2.merge``
  span linked to the stage-1 spans its partials carry (:func:`apply_bundle`).

Example::

    app = build_app(Settings(bootstrap="127.0.0.1:9092", spec=spec))
    faust.Worker(app, loglevel="info").execute_from_commandline()
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import time
from typing import TYPE_CHECKING, Any

import faust
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from slo import conventions as c
from slo.exposition import EngineCollector
from slo.stage1 import Stage1, Stage1Stats
from slo.stage2 import Stage2
from slo.stream.exits import EXIT_STAGE1_DIED
from slo.stream.health import HealthService
from slo.stream.metrics import StreamCollector
from slo.stream.settings import Settings
from slo.stream.stage1_process import Stage1Process
from slo.stream.stage1_runner import SERVICE_NAME, Stage1Runner
from slo.stream.topics import STAGE2_TABLE, decode_bundle, partition_for
from slo.telemetry import Tracing, setup_tracing, tracing
from slo.telemetry.names import ATTR_PARTIAL_SKIPPED

if TYPE_CHECKING:
    from slo.partial import Partial

log = logging.getLogger(__name__)


class Runtime:
    """The state one worker process holds; exposed for tests and the metrics collector."""

    def __init__(self, settings: Settings, tracer: Tracing | None = None) -> None:
        self.settings = settings
        self.stage2 = Stage2(settings.spec)
        # Stage 1 runs in a child process by default (see slo/stream/stage1_process.py);
        # in-process it shares the GIL with Faust.
        self.stage1: Stage1 | None = None
        self.runner: Stage1Runner | None = None
        self.child: Stage1Process | None = None
        if settings.stage1_process:
            self.child = Stage1Process(settings)
        else:
            self.stage1 = Stage1(settings.spec, dedup_records=settings.dedup_records)
            self.runner = Stage1Runner(settings, self.stage1, tracer=tracer)
        self.bundles = 0
        self.bad_bundles = 0
        self.skipped_bundles: dict[str, int] = {}  # by reason (conventions.REASON_*)
        self.table_writes = 0
        self.partials_lag: dict[int, int] = {}
        self.exit_code = 0  # non-zero once the worker stopped itself (slo/stream/exits.py)

    def fail(self, code: int, reason: str) -> None:
        """Stop the worker with exit ``code``, saying why in one log line."""
        log.critical("worker stopping with exit code %d: %s", code, reason)
        self.exit_code = code
        os.kill(os.getpid(), signal.SIGTERM)  # Faust's graceful shutdown, then cli exits with code

    def skip_bundle(self, reason: str, exc: BaseException) -> bool:
        """Count a ``slo-partials`` message stage 2 cannot use; it is skipped, never retried."""
        self.bad_bundles += 1
        self.skipped_bundles[reason] = self.skipped_bundles.get(reason, 0) + 1
        if self.bad_bundles <= 10 or self.bad_bundles % 1000 == 0:
            log.warning("stage2: skipped a bundle (%s, %d so far): %r", reason, self.bad_bundles, exc)
        return self.settings.dead_letter  # True: copy it to the dead-letter topic

    def stage1_stats(self) -> Stage1Stats:
        """Stage-1 counters and lag, from the child process or the in-process runner."""
        if self.child is not None:
            return self.child.poll()
        assert self.stage1 is not None and self.runner is not None
        return Stage1Stats(self.stage1.counters, self.runner.lag(), self.runner.failed_cuts)

    def owned_partitions(self, app: faust.App) -> set[int]:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic == c.TOPIC_PARTIALS}


def apply_bundle(stage2: Stage2, tr: Tracing, region: str, bundle: list[Partial]) -> bool:
    """Apply one region's bundle (one stage-1 cut) to ``stage2``; True if any partial was new.

    With tracing on, inside a merge span linked to the stage-1 spans in the
    partials' ``trace_links`` (a span with sampled links is always kept).
    """
    if not tr.enabled or not bundle:
        return any([stage2.apply(p) for p in bundle])
    first = bundle[0]  # one cut: every partial shares source, lo and hi
    with tr.merge([p.trace_links for p in bundle], region=region, source=first.source,
                  lo=first.lo, hi=first.hi) as span:
        applied = any([stage2.apply(p) for p in bundle])  # a list: apply every one
        span.set_attribute(ATTR_PARTIAL_SKIPPED, not applied)
    return applied


def build_app(settings: Settings, *, tracer: Tracing | None = None) -> faust.App:
    """A Faust app wired to ``settings``; see the module docstring.

    ``tracer=None`` sets up the process's tracing from the ``OTEL_*`` variables.
    """
    if tracer is None:
        setup_tracing(SERVICE_NAME)
        tracer = tracing()
    tr = tracer
    rt = Runtime(settings, tr)  # a stage-1 child process sets up its own
    app = faust.App(
        f"{c.FAUST_APP_ID}",
        broker=f"kafka://{settings.bootstrap}",
        store="memory://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partials_partitions,
        topic_replication_factor=1,
        web_enabled=True,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.session_timeout_s / 6,
        broker_commit_interval=1.0,
        producer_acks=-1,
        table_cleanup_interval=3600.0,
        consumer_auto_offset_reset="earliest",
        # Raw bytes everywhere: Faust's table recovery decodes changelog records
        # with the app's default serializers, not the table's schema.
        key_serializer="raw",
        value_serializer="raw",
    )
    app.streamslo = rt  # type: ignore[attr-defined]
    partials = app.topic(
        c.TOPIC_PARTIALS,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partials_partitions,
    )
    table = app.Table(
        STAGE2_TABLE,
        default=None,
        key_type=bytes,  # Faust picks the changelog codec from these types ("raw")
        value_type=bytes,
        schema=faust.Schema(
            key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        ),
        partitions=settings.partials_partitions,
    )

    def load_region(region: str) -> None:
        if region in rt.stage2.regions():
            return
        data = table.get(region.encode())
        if not data:
            return
        try:
            rt.stage2.import_region(region, data)
        except ValueError as exc:
            # A corrupt state, or one that no longer fits the spec (its dimension
            # removed or its allow-list shrunk: docs/spec.md, "Migrating"). The
            # region starts empty and its next export replaces the stored state.
            log.error("stage2: region %s: stored state not loaded, windows start empty: %s", region, exc)
            return
        log.info("stage2: loaded region %s from the table", region)

    dead_letters = app.topic(
        c.TOPIC_DEAD_LETTER, key_type=bytes, value_type=bytes,
        key_serializer="raw", value_serializer="raw",
    )

    async def dead_letter(event: Any, reason: str) -> None:
        source = f"{event.message.topic}/{event.message.partition}@{event.message.offset}"
        try:  # a lost copy must not stop stage 2
            await dead_letters.send(key=event.key, value=event.value,
                                    headers={"reason": reason.encode(), "source": source.encode()})
        except Exception as exc:
            log.warning("stage2: dead-letter copy of %s failed: %r", source, exc)

    @app.agent(partials, concurrency=1)
    async def stage2_agent(stream: Any) -> None:
        async for event in stream.events():
            region = event.key.decode() if event.key else ""
            try:
                bundle = decode_bundle(event.value)
            except Exception as exc:  # any bad bundle: skip and count, never stop
                if rt.skip_bundle(c.REASON_MALFORMED, exc):
                    await dead_letter(event, c.REASON_MALFORMED)
                continue
            load_region(region)
            try:
                applied = apply_bundle(rt.stage2, tr, region, bundle)
            except Exception as exc:
                if rt.skip_bundle(c.REASON_INVALID, exc):
                    await dead_letter(event, c.REASON_INVALID)
                applied = region in rt.stage2.regions()  # persist whatever part was applied
            rt.bundles += 1
            if applied:
                # One changelog record per bundle: the region's whole state.
                table[region.encode()] = rt.stage2.export_region(region)
                rt.table_writes += 1

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def load_assigned_regions() -> None:
        # Regions whose partitions we own but that received nothing since
        # assignment (e.g. after a restart at the end of a stream) must still
        # be exported; only after recovery, or the table may be stale.
        if app.rebalancing or app.tables.recovery.in_recovery:  # type: ignore[attr-defined]
            return
        owned = rt.owned_partitions(app)
        for key in list(table.keys()):
            region = key.decode()
            if partition_for(key, settings.partials_partitions) in owned:
                load_region(region)
        partials_lag = {}
        for tp in app.consumer.assignment():
            if tp.topic == c.TOPIC_PARTIALS:
                high = app.consumer.highwater(tp)
                # Faust keeps no public read position.
                read = app.consumer._read_offset.get(tp)  # type: ignore[attr-defined]
                if high is not None:
                    partials_lag[tp.partition] = max(0, high - (read + 1 if read is not None else 0))
        rt.partials_lag = partials_lag

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        gone = {tp.partition for tp in revoked if tp.topic == c.TOPIC_PARTIALS}
        for region in rt.stage2.regions():
            if partition_for(region.encode(), settings.partials_partitions) in gone:
                rt.stage2.drop_region(region)
                log.info("stage2: dropped region %s (partition revoked)", region)

    @app.task  # type: ignore[untyped-decorator]
    async def stage1_task() -> None:
        if rt.child is not None:
            rt.child.start()
            while True:  # a worker without its stage 1 must not look healthy
                await asyncio.sleep(1.0)
                if not rt.child.alive():
                    rt.fail(EXIT_STAGE1_DIED,
                            f"stage1 child process exited with code {rt.child.exitcode()}")
                    return
        assert rt.runner is not None
        try:
            await rt.runner.run()
        except Exception as exc:
            log.exception("stage1: crashed")
            rt.fail(EXIT_STAGE1_DIED, f"stage1 crashed: {type(exc).__name__}: {exc}")
            raise

    if rt.child is not None:
        # Graceful exit: let the child finish its cut (it also dies with us on kill -9).
        atexit.register(rt.child.stop)

    registry = CollectorRegistry()
    registry.register(EngineCollector(lambda: rt.stage2.snapshot(time.time()), settings.spec))
    registry.register(StreamCollector(rt, skipped_bundles=rt.skipped_bundles))

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        body = generate_latest(registry).decode()
        return web.text(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.text("ok")

    # Region health for DNS checks, the same on every worker (slo/stream/health.py).
    region_health = HealthService(settings, rt.stage2, registry)
    app.streamslo_health = region_health  # type: ignore[attr-defined]

    @app.page(c.HEALTH_PATH)
    async def region_health_page(web: Any, request: Any, region: str) -> Any:
        status, body, _ = region_health.answer(region, time.time())
        return web.text(body, status=status)

    @app.task  # type: ignore[untyped-decorator]
    async def region_health_task() -> None:
        await region_health.run()

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        # Kubernetes readiness: region health answers come from the whole shared topic.
        ready = region_health.caught_up
        return web.text("ready" if ready else "catching up with slo-health", status=200 if ready else 503)

    return app
