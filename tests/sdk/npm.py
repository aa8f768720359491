"""Run the SDK's npm scripts from pytest: ``npm ci`` once when ``node_modules`` is missing.

Use :func:`npm` in the SDK tests (``tests/test_sdk_*.py``); they skip when
node or npm is not installed. Example::

    npm("run", "build")
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

SDK = ROOT / "sdk" / "web"
NODE = shutil.which("node")
NPM = shutil.which("npm")
needs_node = pytest.mark.skipif(NODE is None or NPM is None, reason="node/npm not installed")


def ensure_installed() -> None:
    """``npm ci`` (from the committed lockfile) unless the dependencies are installed."""
    if not (SDK / "node_modules" / ".package-lock.json").exists():
        npm("ci", "--no-audit", "--no-fund", timeout_s=600)


def npm(*args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """``npm ARGS`` in sdk/web; fails the test with npm's output when it exits non-zero."""
    assert NPM is not None
    proc = subprocess.run([NPM, *args], cwd=SDK, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        pytest.fail(f"npm {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def built() -> None:
    """Install and build ``dist/`` (ESM, declarations, IIFE)."""
    ensure_installed()
    npm("run", "build")
