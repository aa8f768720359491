"""Region health on the stream workers: every worker gives the same answer, owner or not.

A region's stage-2 state lives on one worker only (the owner of its
``slo-partials`` partition), but a DNS health checker reaches whichever
worker a load balancer picks. So the answer never comes from local state:

- the owner publishes, every ``interval_s``, one
  :class:`slo.health.HealthReport` per region it holds to the compacted topic
  ``slo-health`` (key = region, 1 partition);
- every worker, owner included, reads that whole topic with its own consumer
  (no group, from the beginning) and answers ``GET /v1/regions/{region}/health``
  from the last record per region, evaluated at its own clock by
  :func:`slo.health.answer` (``for`` / ``recover_for`` elapse and staleness are
  computed at read time, so a record a second old gives the same verdict).

If the owner dies, records stop; after the trigger's ``stale_after`` every
worker answers its ``on_no_data``, until the new owner (which loads the region
from the stage-2 table) publishes again. Bad records are skipped and counted.

Example (wired by ``slo/stream/app.py``)::

    service = HealthService(settings, rt.stage2, registry)
    await service.run()                      # an app task
    status, body, outcome = service.answer("eu-west-1", time.time())
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from prometheus_client import CollectorRegistry, Counter

from slo import conventions as c
from slo import health
from slo.stage2 import Stage2
from slo.stream.settings import Settings

__all__ = ["HealthService", "ensure_health_topic"]

log = logging.getLogger(__name__)

PUBLISH_INTERVAL_S = 1.0


async def ensure_health_topic(bootstrap: str) -> None:
    """Create the compacted ``slo-health`` topic (1 partition) when missing."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="streamslo-health-admin")
    await admin.start()
    try:
        if c.TOPIC_HEALTH in set(await admin.list_topics()):
            return
        topic = NewTopic(c.TOPIC_HEALTH, 1, 1, topic_configs={"cleanup.policy": "compact"})
        with contextlib.suppress(TopicAlreadyExistsError):  # another worker won the race
            await admin.create_topics([topic])
    finally:
        await admin.close()


class HealthService:
    """Publishes the regions this worker holds and answers from what every worker published."""

    def __init__(
        self,
        settings: Settings,
        stage2: Stage2,
        registry: CollectorRegistry,
        interval_s: float = PUBLISH_INTERVAL_S,
    ) -> None:
        self.settings = settings
        self.stage2 = stage2
        self.interval_s = interval_s
        self.reports: dict[str, health.HealthReport] = {}
        self.published = 0
        # Ready (``/readyz``) once the reader has read the whole topic: before
        # that, answers could come from older records than other workers have.
        self.caught_up = False
        self._answers = Counter(
            c.METRIC_HEALTH_REQUESTS.removesuffix("_total"), "Region health answers by outcome.",
            [c.LABEL_OUTCOME], registry=registry,
        )
        self._bad = Counter(
            c.METRIC_HEALTH_BAD_RECORDS.removesuffix("_total"), "slo-health records skipped (undecodable).",
            registry=registry,
        )

    def answer(self, region: str, now: float) -> tuple[int, str, str]:
        """``(status, body, outcome)`` from the shared topic only (never from local state)."""
        status, body, outcome = health.answer(self.settings.spec, region, self.reports.get(region), now)
        self._answers.labels(outcome).inc()
        return status, body, outcome

    async def run(self) -> None:
        """Publish and read until cancelled (an app task); a broker error retries, never stops the worker."""
        while True:
            try:
                await ensure_health_topic(self.settings.bootstrap)
                await asyncio.gather(self._publish_forever(), self._read_forever())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("health: publisher/reader failed; retrying in 2 s", exc_info=True)
                await asyncio.sleep(2.0)

    async def _publish_forever(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap, client_id=f"{self.settings.client_id}-health", acks=1,
        )
        await producer.start()
        try:
            while True:
                await asyncio.sleep(self.interval_s)
                await self._publish(producer, time.time())
        finally:
            await producer.stop()

    async def _publish(self, producer: AIOKafkaProducer, now: float) -> None:
        # Observe the triggers now: with no scrape and no new bundle, nothing
        # else would move the state machine forward on this worker.
        self.stage2.advance(now)
        for region in self.stage2.regions():
            report = self.stage2.health_report(region)
            if report is None or region not in self.settings.spec.regions:
                continue
            try:
                await producer.send_and_wait(c.TOPIC_HEALTH, report.to_json(), key=region.encode())
                self.published += 1
            except Exception:  # a lost record is replaced a second later
                log.warning("health: could not publish %s", region, exc_info=True)

    async def _read_forever(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap, client_id=f"{self.settings.client_id}-health-reader",
            group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            partition = TopicPartition(c.TOPIC_HEALTH, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        self._read(record.value)
                high = consumer.highwater(partition)
                if not self.caught_up and high is not None and await consumer.position(partition) >= high:
                    self.caught_up = True
                    log.info("health: caught up with %s (%d regions)", c.TOPIC_HEALTH, len(self.reports))
        finally:
            await consumer.stop()

    def _read(self, value: bytes | None) -> None:
        try:
            report = health.HealthReport.from_json(value or b"")
        except (ValueError, KeyError, TypeError, json.JSONDecodeError):
            self._bad.inc()
            return
        self.reports[report.region] = report
