"""Every ``streamslo`` command that takes ``--spec``: what a bad spec file does to it.

A file that cannot be read or parsed (missing, a directory, not UTF-8, not
YAML) prints exactly one line, ``streamslo <command>: <path>: <reason>``, and
exits 2 (``slo.spec.load_spec_for_cli``); an invalid spec keeps each
command's documented exit code (docs/configuration.md). Each case runs the
real console entry point in a subprocess, so a traceback would show.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "specs"

# Each command with the other arguments it requires; none is reached (the spec fails first).
COMMANDS = {
    "validate": [],
    "generate": ["--out", "{tmp}/out"],
    "run": [],
    "worker": ["--kafka", "127.0.0.1:1"],
    "collector": ["--kafka", "127.0.0.1:1"],
    "backtest": ["--data", "{tmp}/traffic.jsonl"],
}

# Invalid spec (valid YAML, a field out of range): the command's own documented code.
INVALID_SPEC_EXIT = {"validate": 1, "generate": 1, "run": 1, "worker": 1, "collector": 2, "backtest": 2}


def _spec_file(kind: str, tmp: Path) -> Path:
    """A spec path that cannot be loaded, even by root (no chmod: root reads anything)."""
    if kind == "missing":
        return tmp / "nonexistent.yaml"
    if kind == "directory":
        return tmp
    path = tmp / f"{kind}.yaml"
    if kind == "not utf-8":
        path.write_bytes(b"apiVersion: streamslo/v1\nname: \xff\xfe\n")
    else:
        path.write_text("apiVersion: streamslo/v1\nregions: [eu-west-1\n")
    return path


def _run(command: str, spec: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    extra = [arg.format(tmp=tmp) for arg in COMMANDS[command]]
    return subprocess.run(
        [sys.executable, "-m", "streamslo.cli", command, "--spec", str(spec), *extra],
        capture_output=True, text=True, timeout=60, check=False,
    )


UNREADABLE = [
    ("missing", "No such file or directory"),
    ("directory", "Is a directory"),
    ("not utf-8", "not UTF-8 text"),
    ("not yaml", "not valid YAML"),
]


@pytest.mark.parametrize(
    ("command", "kind", "reason"),
    [
        pytest.param(command, kind, reason, id=f"{command} with a {kind} spec file exits 2 with one line")
        for command in COMMANDS
        for kind, reason in UNREADABLE
    ],
)
def test_an_unreadable_spec_file_exits_2_with_one_line(command: str, kind: str, reason: str, tmp_path: Path) -> None:
    spec = _spec_file(kind, tmp_path)
    result = _run(command, spec, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"streamslo {command}: {spec}: {reason}")


@pytest.mark.parametrize(
    ("command", "code"),
    [
        pytest.param(command, code, id=f"{command} with an invalid spec exits {code} and names the field")
        for command, code in INVALID_SPEC_EXIT.items()
    ],
)
def test_an_invalid_spec_keeps_the_commands_exit_code(command: str, code: int, tmp_path: Path) -> None:
    result = _run(command, FIXTURES / "bad-thresholds.yaml", tmp_path)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert "slos[0].objectives[0].threshold_ms: must be > 0" in result.stdout + result.stderr
