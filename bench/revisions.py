"""Legs of another revision or server: ``kafka@REV``, ``kafka@DIR``, ``kafka:granian``.

Use :func:`split_leg` to read a leg name of ``bench/bench_ingest.py`` and
:func:`checkout` to get the collector's packages as of a revision; the server
child puts that directory first on ``sys.path`` (``BENCH_SRC``), so both legs
of a pair run the same benchmark code on different collector code.

    split_leg("kafka@HEAD~1:granian")   # ("kafka", "HEAD~1", "granian")
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def split_leg(leg: str) -> tuple[str, str | None, str | None]:
    """``"kafka@HEAD~1:granian"`` -> ``("kafka", "HEAD~1", "granian")``: leg, revision, server."""
    leg, _, server = leg.partition(":")
    leg, _, rev = leg.partition("@")
    return leg, rev or None, server or None


def checkout(rev: str) -> str:
    """The collector's packages as of ``rev`` (``git archive``) in a cache dir; returns the dir.

    Lets ``--paired kafka@HEAD~1,kafka`` measure a change against the commit
    before it, both served at once, without touching the work tree. A
    directory holding ``collector/`` (an uncommitted experiment) is used as is.
    """
    if (Path(rev) / "collector").is_dir():
        return str(Path(rev).resolve())
    sha = subprocess.run(["git", "rev-parse", rev], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout.strip()
    dest = Path.home() / ".cache" / "streamslo" / "bench-rev" / sha
    if not (dest / "collector").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        tar = subprocess.run(["git", "archive", sha, "collector", "slo", "streamslo"], cwd=ROOT,
                             check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)
    return str(dest)
