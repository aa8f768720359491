"""Shared pytest setup. Real-service fixtures live in their own plugin modules.

Under ``CI=true`` (``.ci/run``) a skipped test is a failed test: every skip in
this suite means a dependency is missing (a Debian package, Node, the Kafka
jars), and ``scripts/install-deps.sh`` installs them all, so the suite must not
go green by skipping. Outside CI a skip stays a skip, with its reason (``-ra``).
Expected failures (``xfail``) are not skips and are left alone.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

pytest_plugins = ["tests.fixtures_kafka", "tests.fixtures_prometheus"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files under tests/golden/ instead of comparing",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


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
