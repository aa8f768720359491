"""Shared pytest setup. Real-service fixtures live in their own plugin modules.

The CI rule (a skip fails the run under ``CI=true``) is ``tests/ci_skips.py``,
a plugin loaded for the whole run (``-p tests.ci_skips`` in pyproject.toml), so
it covers the packages' doctests too, not only this directory.
"""

from __future__ import annotations

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
