"""The README and the user docs say what the code does.

The first screen must carry what a new user needs (what it is, the data flow,
install + run, the test command CI runs, what they will see); every relative
link must resolve; every ``streamslo`` command shown must use real
subcommands and flags; the curl example must be accepted by a running server.
(The run command itself is executed by ``tests/test_embedded.py``.)
"""

from __future__ import annotations

import functools
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from streamslo.cli import COMMANDS
from tests.conftest import ROOT
from tests.test_embedded import README, embedded_server, readme_commands

DOCS = [README, ROOT / "docs" / "configuration.md", ROOT / "docs" / "deployment.md", ROOT / "docs" / "sdk.md"]
FIRST_SCREEN_LINES = 50


def first_screen() -> str:
    return "\n".join(README.read_text().splitlines()[:FIRST_SCREEN_LINES])


NEEDS = [
    ("pip install -e '.[dev]'", "the install command"),
    ("streamslo run --demo", "the run command"),
    ("scripts/test", "the test command"),
    ("http://127.0.0.1:8080/", "where the status page is"),
    ("http://127.0.0.1:8080/metrics", "where the metrics are"),
    ("POST /v1/beacons", "the data-flow picture's ingest"),
    ("Prometheus", "the data-flow picture's alerting path"),
]


@pytest.mark.parametrize("text", [n[0] for n in NEEDS], ids=[f"the first screen shows {n[1]}" for n in NEEDS])
def test_first_screen(text: str) -> None:
    assert text in first_screen()


def commands_of(script: Path) -> list[str]:
    """The script's lines that are not blank or comments."""
    lines = (line.strip() for line in script.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_the_readme_commands_are_what_ci_runs() -> None:
    ci = commands_of(ROOT / ".ci" / "run")
    assert "pip install -e '.[dev]'" in readme_commands()
    assert [line for line in ci if "pip install" in line] == [
        "python -m pip install -q --disable-pip-version-check -e '.[dev]'"]
    assert "scripts/test" in readme_commands()
    assert "scripts/test" in ci
    assert not [line for line in ci if "pytest" in line or "npm" in line], "CI runs tests only through scripts/test"


def test_the_test_command_sets_up_then_runs_the_whole_suite() -> None:
    script = ROOT / "scripts" / "test"
    assert script.stat().st_mode & 0o111, "scripts/test is not executable"
    commands = commands_of(script)
    assert "bash scripts/install-deps.sh" in commands
    assert any("npm ci" in line for line in commands)
    assert commands[-1] == 'exec python -m pytest -q "$@"'


@pytest.mark.parametrize("doc", DOCS, ids=[f"links in {d.relative_to(ROOT)} resolve" for d in DOCS])
def test_relative_links_resolve(doc: Path) -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text())
    missing = [link for link in links if "://" not in link and not (doc.parent / link).exists()]
    assert not missing, f"{doc.name} links to missing files: {missing}"


def shown_streamslo_commands() -> list[list[str]]:
    commands = []
    for doc in DOCS:
        for block in re.findall(r"^```sh\n(.*?)^```", doc.read_text(), flags=re.M | re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" #")[0].strip().rstrip("&").strip()
                line = re.sub(r"^(\w+=\S+\s+)+", "", line)  # drop VAR=value prefixes
                if line.startswith("streamslo "):
                    commands.append(shlex.split(line))
    return commands


@pytest.mark.parametrize("argv", shown_streamslo_commands(), ids=lambda a: " ".join(a)[:60])
def test_documented_commands_use_real_subcommands_and_flags(argv: list[str]) -> None:
    assert argv[1] in COMMANDS, f"streamslo has no subcommand {argv[1]!r}"
    text = help_text(argv[1])
    for flag in (a.split("=")[0] for a in argv[2:] if a.startswith("--")):
        assert re.search(rf"(^|\s){re.escape(flag)}\b", text), f"`streamslo {argv[1]} --help` has no {flag}"


@functools.cache
def help_text(command: str) -> str:
    result = subprocess.run([sys.executable, "-m", "streamslo.cli", command, "--help"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_the_readme_curl_example_is_accepted(tmp_path: Path) -> None:
    curl = next(c for c in readme_commands_joined() if c.startswith("curl ") and "/v1/beacons" in c)
    with embedded_server("streamslo run", tmp_path / "run.log") as base:
        command = curl.replace("http://127.0.0.1:8080", base) + " -s -o /dev/null -w '%{http_code}'"
        result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    assert result.stdout == "202", result.stdout + result.stderr


def readme_commands_joined() -> list[str]:
    """README sh-block commands with continued lines (open quotes) joined into one."""
    out: list[str] = []
    pending = ""
    for line in readme_commands():
        pending = f"{pending}\n{line}" if pending else line
        try:
            shlex.split(pending)
        except ValueError:  # an open quote: the command goes on
            continue
        out.append(pending)
        pending = ""
    return out


SDK_SRC = ROOT / "sdk" / "web" / "src"


def test_the_readme_player_example_uses_the_sdks_real_api() -> None:
    section = README.read_text().split("## Instrument a player", 1)[1].split("\n## ", 1)[0]
    exported = (SDK_SRC / "reporter.ts").read_text() + (SDK_SRC / "react.ts").read_text()
    used = set(re.findall(r"\b(createReporter|StreamSLOProvider|use[A-Z]\w+)\b", section)) - {"useRef"}
    used |= set(re.findall(r"\bslo\.(\w+)\(", section))
    assert {"createReporter", "StreamSLOProvider", "useVideoSLO", "useInteraction", "watchVideo", "measure"} <= used
    missing = [n for n in used if not re.search(rf"(function {n}\b|^\s+{n}\(|^\s+{n}<)", exported, flags=re.M)]
    assert not missing, f"README's player example uses names the SDK does not have: {missing}"
    call = section.split("createReporter(", 1)[1].split("})", 1)[0]
    options = set(re.findall(r"(\w+):", re.sub(r'"[^"]*"', '""', call)))
    declared = set(re.findall(r"^\s+(\w+)\??:", (SDK_SRC / "types.ts").read_text(), flags=re.M))
    assert options and options <= declared, options - declared
