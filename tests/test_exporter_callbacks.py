"""KafkaExporter's delivery reports with a ``done`` callback that raises: logged, and nothing else stops.

Each record's waiters are the ``done`` callbacks of the requests whose beacons
it holds (``collector.group_commit``). They run inside the producer's
``poll()``, or from the purge that gives up on a record: one raising (a bug in
a waiter) must neither keep the record's other waiters from hearing nor escape
into ``_poll``, whose loop serves every later acknowledgement.

A fake producer on purpose, as ``tests/test_collector_kafka.py``'s purge test:
what is under test is the exporter's own handling of the callbacks, with no
broker involved.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from collector.exporters import ExporterUnavailable, KafkaExporter
from collector.group_commit import Done


class FakeProducer:
    """Keeps each record's delivery report; ``poll()`` serves them, ``purge()`` loses them all."""

    def __init__(self) -> None:
        self.reports: list[Callable[[Any, Any], None]] = []
        self.error: Any = None  # what the reports say: None for an ack

    def produce(self, *_args: Any, on_delivery: Callable[[Any, Any], None], **_kwargs: Any) -> None:
        self.reports.append(on_delivery)

    def poll(self, _timeout: float) -> int:
        served = 0
        while self.reports:
            self.reports.pop(0)(self.error, None)
            served += 1
        return served

    def purge(self) -> None:
        self.reports.clear()


class TimedOut:
    """A delivery error as confluent-kafka hands it to the report (a ``KafkaError``)."""

    @staticmethod
    def name() -> str:
        return "_MSG_TIMED_OUT"


class BrokenCallback(Exception):
    """Raised by a ``done`` callback: a bug in whoever waits on a beacon."""


Heard = list[tuple[int, BaseException | None]]


def waiters(heard: Heard) -> list[Done]:
    """A record's three waiters, the second of which raises after it has heard."""

    def recorder(i: int) -> Done:
        return lambda error: heard.append((i, error))

    def broken(error: BaseException | None) -> None:
        heard.append((1, error))
        raise BrokenCallback("a waiter's bug")

    return [recorder(0), broken, recorder(2)]


async def deliver(exporter: KafkaExporter, producer: FakeProducer) -> None:
    """The poll loop's step: the record's delivery report is served."""
    exporter._poll(producer)


async def purge(exporter: KafkaExporter, producer: FakeProducer) -> None:
    """A producer replaced: its purge loses the report, the exporter fails the record's waiters."""
    await exporter._purge(producer)


@pytest.mark.parametrize(
    ("report", "error", "expect"),
    [
        pytest.param(deliver, None, None, id="an ack served by poll reaches every other waiter"),
        pytest.param(deliver, TimedOut(), ExporterUnavailable,
                     id="a delivery error served by poll reaches every other waiter"),
        pytest.param(purge, None, ExporterUnavailable,
                     id="a record the purge lost fails every other waiter"),
    ],
)
async def test_a_done_that_raises_is_logged_and_the_other_waiters_and_later_polls_go_on(
    caplog: pytest.LogCaptureFixture,
    report: Callable[[KafkaExporter, FakeProducer], Awaitable[None]],
    error: Any,
    expect: type[BaseException] | None,
) -> None:
    exporter = KafkaExporter("unused:9092", send_timeout_s=0.05)
    producer = FakeProducer()
    producer.error = error
    exporter._producer = producer
    heard: Heard = []
    exporter._produce_group(0, b"{}", b"k", None, waiters(heard))
    with caplog.at_level(logging.ERROR):
        await report(exporter, producer)  # raises nothing
    assert [(i, None if e is None else type(e)) for i, e in heard] == [(0, expect), (1, expect), (2, expect)]
    assert exporter._in_flight == {}
    errors = [(r.name, r.exc_info[0] if r.exc_info else None) for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [("collector.group_commit", BrokenCallback)]

    # The poll loop goes on: a later record's report is still served.
    later: Heard = []
    producer.error = None
    exporter._produce_group(0, b"{}", b"k", None, [lambda e: later.append((0, e))])
    exporter._poll(producer)
    assert later == [(0, None)]
