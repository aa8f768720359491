"""Under ``CI=true`` (``.ci/run``) a skipped test is a failed test.

Every skip in this suite means a dependency is missing (a Debian package,
Node, the Kafka jars), and ``scripts/install-deps.sh`` installs them all, so
the suite must not go green by skipping. Outside CI a skip stays a skip, with
its reason (``-ra``). Expected failures (``xfail``) are not skips and are left
alone. Loaded for the whole run with ``-p tests.ci_skips`` (pyproject.toml's
addopts): a ``conftest.py`` in ``tests/`` would not see the doctests of the
packages, which are test paths too.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest


def in_ci() -> bool:
    """Whether the environment variable ``CI`` is set to a true-ish value."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def fail_skip_in_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Turn a skip report into a failure naming the skip's reason, when in CI."""
    if not (report.skipped and in_ci()) or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true, where nothing may skip: {reason.removeprefix('Skipped: ')}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    fail_skip_in_ci(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    fail_skip_in_ci(report)
    return report
