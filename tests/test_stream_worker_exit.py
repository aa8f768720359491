"""A worker that must die says why and exits non-zero, so a supervisor restarts it."""

from __future__ import annotations

import os
import signal

import pytest

from slo import conventions as c
from slo.stream.exits import EXIT_STAGE1_DIED
from streamslo.testing.stream import Worker, create_topic, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_a_worker_whose_stage1_child_died_exits_non_zero_with_one_log_line(kafka_broker, tmp_path):
    create_topic(kafka_broker.bootstrap, c.TOPIC_BEACONS, 2)
    worker = Worker(kafka_broker.bootstrap, tmp_path, "exit").start()
    try:
        wait_until(lambda: worker.stage1_pid() is not None
                   and c.METRIC_STREAM_EVENTS in {k[0] for k in worker.scrape()}, 60, "worker up")
        pid = worker.stage1_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert worker.proc is not None
        code = worker.proc.wait(60)
        lines = [line for line in worker.log_tail(200).splitlines() if "worker stopping with exit code" in line]
        assert code == EXIT_STAGE1_DIED, worker.log_tail()
        assert len(lines) == 1 and "stage1 child process exited with code -9" in lines[0], lines
    finally:
        worker.stop()
