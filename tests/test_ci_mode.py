"""Under ``CI=true`` a skipped test fails the run; outside CI it stays a skip.

Each case runs a small test file in a fresh pytest session (``pytester``)
whose conftest has exactly the two hooks of ``tests/ci_skips.py``.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CONFTEST = "from tests.ci_skips import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401\n"

SKIP_IN_BODY = """
import pytest

def test_needs_promtool():
    pytest.skip("promtool not installed")
"""
SKIPIF_MARK = """
import pytest

@pytest.mark.skipif(True, reason="chromium not installed")
def test_needs_chromium():
    pass
"""
SKIP_IN_FIXTURE = """
import pytest

@pytest.fixture(scope="module")
def kubectl():
    pytest.skip("kubectl not installed")

def test_renders(kubectl):
    pass
"""
SKIP_MODULE = """
import pytest

pytest.skip("node/npm not installed", allow_module_level=True)

def test_sdk():
    pass
"""
XFAIL = """
import pytest

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_known_bug():
    assert False
"""
PASSES = """
def test_passes():
    pass
"""

CASES = [
    pytest.param("true", SKIP_IN_BODY, 1, ["FAILED", "test_needs_promtool", "promtool not installed"],
                 id="CI=true: pytest.skip in a test fails the run naming the test and the reason"),
    pytest.param("true", SKIPIF_MARK, 1, ["ERROR", "test_needs_chromium", "chromium not installed"],
                 id="CI=true: a skipif mark is an error at setup naming the test and the reason"),
    pytest.param("1", SKIP_IN_FIXTURE, 1, ["ERROR", "test_renders", "kubectl not installed"],
                 id="CI=1: a skip in a fixture is an error naming the test and the reason"),
    pytest.param("true", SKIP_MODULE, 2, ["ERROR collecting", "node/npm not installed"],
                 id="CI=true: a module-level skip is a collection error naming the reason"),
    pytest.param("true", XFAIL, 0, ["1 xfailed"],
                 id="CI=true: an expected failure is not a skip and passes"),
    pytest.param("true", PASSES, 0, ["1 passed"],
                 id="CI=true: a run with no skip passes"),
    pytest.param(None, SKIP_IN_BODY, 0, ["1 skipped"],
                 id="CI unset: a skip stays a skip and the run passes"),
    pytest.param("false", SKIPIF_MARK, 0, ["1 skipped"],
                 id="CI=false: a skip stays a skip and the run passes"),
]


@pytest.mark.parametrize(("ci", "test_file", "exit_code", "shown"), CASES)
def test_ci_mode(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                 ci: str | None, test_file: str, exit_code: int, shown: list[str]) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_case=test_file)
    result = pytester.runpytest("-q", "-ra", "-p", "no:cacheprovider",
                                "-o", "asyncio_default_fixture_loop_scope=function")
    output = result.stdout.str()
    assert result.ret == exit_code, output
    missing = [text for text in shown if text not in output]
    assert not missing, f"{missing} not in:\n{output}"
