"""The worker survives what Kafka and its neighbours do to it, with exact totals.

Real broker (``scripts/kafka.py``), real ``streamslo worker`` and ``streamslo
collector`` subprocesses. Each scenario feeds numbered beacons steadily while
it breaks something, then requires the worker's ``/metrics`` to show exact
per-region totals (attempts, errors, ttff count: 0 lost, 0 counted twice)
from the *same* worker process (never restarted by the test, except where
the scenario is the worker's own crash). Figures go to ``docs/reliability.md``;
each scenario prints one ``RELIABILITY`` line with them (run with ``-s``).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from slo import conventions as c
from streamslo.testing.stream import Collector, Worker, create_topic, metric_sum, wait_until
from tests.fixtures_kafka import Traffic, progressing, report, settle

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
PARTITIONS = 4
SESSION_S = 6.0  # the worker's --session-timeout default (the broker's minimum)


def applying_again(worker: Worker) -> Callable[[], bool]:
    """A predicate: stage 2 applied a partial after this call (the pipeline flows again)."""
    samples = worker.scrape()
    assert samples, "the worker's /metrics did not answer"
    base = metric_sum(samples, c.METRIC_STREAM_PARTIALS, stage="2", outcome="applied")
    # A dead worker ends the wait at once; settle() then fails on it.
    return lambda: (not worker.alive()
                    or metric_sum(worker.scrape(), c.METRIC_STREAM_PARTIALS, stage="2", outcome="applied") > base)


@pytest.fixture
def stack(kafka_broker_factory, tmp_path):
    """A fresh broker with ``beacons`` created and one worker making progress on it."""
    broker = kafka_broker_factory()
    create_topic(broker.bootstrap, c.TOPIC_BEACONS, PARTITIONS)
    worker = Worker(broker.bootstrap, tmp_path, "w").start()
    try:
        yield broker, worker
    except BaseException:
        print(worker.log_tail(60))
        raise
    finally:
        worker.stop()


@pytest.mark.parametrize(
    "down_s",
    [pytest.param(0.0, id="the broker is killed and restarted at once on its own data"),
     pytest.param(SESSION_S + 6, id="the broker stays down twice the session timeout")],
)
def test_the_worker_stays_up_through_a_broker_kill_9_and_counts_exactly(stack, down_s):
    broker, worker = stack
    traffic = Traffic(n=3000, tag=f"b{int(down_s)}-").feed_kafka(broker.bootstrap)
    wait_until(lambda: progressing(worker), 60, "worker progress")
    pid = worker.pid
    t0 = time.monotonic()
    broker.kill()
    time.sleep(down_s)
    broker.restart()
    outage = time.monotonic() - t0
    flowing = wait_until(applying_again(worker), 60, "stage 2 applying new partials again (or the worker dying)")
    exact = settle(worker, traffic, pid)
    failed = metric_sum(worker.scrape(), c.METRIC_STREAM_FAILED_CUTS)
    report("broker-kill", down_s=down_s, outage_s=outage, flowing_after_s=flowing, exact_after_s=exact,
           failed_cuts=int(failed), producer_retries=traffic.retries, beacons=traffic.n)


def test_a_stage1_stall_beyond_the_session_timeout_is_survived(stack):
    broker, worker = stack
    traffic = Traffic(n=3000, tag="stall-").feed_kafka(broker.bootstrap)
    wait_until(lambda: progressing(worker), 60, "worker progress")
    pid, child = worker.pid, worker.stage1_pid()
    assert child is not None
    os.kill(child, signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        time.sleep(SESSION_S + 4)
    finally:
        os.kill(child, signal.SIGCONT)
    stalled = time.monotonic() - t0
    flowing = wait_until(applying_again(worker), 60, "stage 2 applying new partials again (or the worker dying)")
    exact = settle(worker, traffic, pid)
    assert worker.stage1_pid() == child, "the stage-1 child was replaced"
    failed = metric_sum(worker.scrape(), c.METRIC_STREAM_FAILED_CUTS)
    report("stage1-stall", stall_s=stalled, flowing_after_s=flowing, exact_after_s=exact,
           failed_cuts=int(failed), beacons=traffic.n)


def test_a_collector_kill_9_under_a_retrying_client_loses_no_acknowledged_beacon(stack, tmp_path):
    broker, worker = stack
    collector = Collector(broker.bootstrap, tmp_path).start()
    try:
        traffic = Traffic(n=2000, per_chunk=25, tag="coll-").feed_collector(lambda: collector.port)
        wait_until(lambda: progressing(worker), 60, "worker progress")
        pid = worker.pid
        t0 = time.monotonic()
        collector.kill()
        collector.start()
        restart = time.monotonic() - t0
        recover = settle(worker, traffic, pid)
        dups = metric_sum(worker.scrape(), c.METRIC_STREAM_DUPLICATES)
        report("collector-kill", collector_down_s=restart, exact_after_s=recover,
               client_retries=traffic.retries, duplicates_removed=int(dups), beacons=traffic.n)
    finally:
        collector.stop()


def test_a_worker_kill_9_and_restart_loses_nothing_and_counts_nothing_twice(stack):
    broker, worker = stack
    traffic = Traffic(n=3000, tag="wk-").feed_kafka(broker.bootstrap)
    wait_until(lambda: progressing(worker), 60, "worker progress")
    time.sleep(1.5)  # let a few cuts and stage-2 applies land, so the kill catches some in flight
    t0 = time.monotonic()
    worker.kill()
    worker.start()  # the scenario is the worker's crash: here the test is the supervisor
    pid = worker.pid
    recover = settle(worker, traffic, pid)
    samples = worker.scrape()
    report("worker-kill", exact_after_restart_s=time.monotonic() - t0, exact_wait_s=recover,
           replays_skipped=int(metric_sum(samples, c.METRIC_STREAM_PARTIALS, stage="2", outcome="duplicate")),
           beacons=traffic.n)
    assert worker.starts == 2
