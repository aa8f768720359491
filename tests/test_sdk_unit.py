"""The player SDK's own checks, run by the README's test command: vitest, tsc, the size budget.

The vitest suites (``sdk/web/test``) run on fake timers against a fake browser
seam; the real browser is ``tests/test_sdk_browser.py``.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.sdk.npm import SDK, built, ensure_installed, needs_node, npm

pytestmark = [pytest.mark.browser, needs_node]


def test_vitest_suites_pass_and_the_sources_type_check_strictly() -> None:
    ensure_installed()
    out = npm("test").stdout
    passed = re.search(r"Tests\s+(?:\S+\s+)*?(\d+) passed", re.sub(r"\x1b\[[0-9;]*m", "", out))
    assert passed and int(passed.group(1)) >= 60, out[-2000:]


def test_build_emits_esm_declarations_the_react_entry_and_the_iife() -> None:
    built()
    for name in ("index.js", "index.d.ts", "react.js", "react.d.ts", "streamslo.iife.min.js"):
        assert (SDK / "dist" / name).stat().st_size > 0, name
    iife = (SDK / "dist" / "streamslo.iife.min.js").read_text()
    assert "StreamSLO" in iife and "import " not in iife  # a classic script, no module syntax
    assert 'from "react"' in (SDK / "dist" / "react.js").read_text()  # a peer, not bundled


def test_the_exports_map_resolves_the_core_and_the_react_entry() -> None:
    built()
    script = ("import { createReporter, VERSION } from '@streamslo/web';"
              "import { StreamSLOProvider, useVideoSLO, useInteraction } from '@streamslo/web/react';"
              "console.log([typeof createReporter, VERSION, typeof StreamSLOProvider,"
              " typeof useVideoSLO, typeof useInteraction].join(' '));")
    proc = subprocess.run(["node", "--input-type=module", "-e", script], cwd=SDK,
                          capture_output=True, text=True, timeout=60)
    version = json.loads((SDK / "package.json").read_text())["version"]
    assert proc.stdout.split() == ["function", version, "function", "function", "function"], proc.stderr


def test_iife_core_stays_within_5_kb_min_gzip() -> None:
    built()
    out = npm("run", "size").stdout  # exits 1 (failing this test) when over budget
    gz = int(re.search(r"gzip_bytes=(\d+)", out).group(1))  # type: ignore[union-attr]
    assert 0 < gz <= 5 * 1024
