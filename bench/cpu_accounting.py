"""CPU seconds of a server process tree from /proc (Linux): the server's own CPU, not the load's.

Use :func:`cpu_seconds` before and after a phase for the server's CPU per
request (robust to a shared machine: other load slows the server down but
does not add to its CPU time), :func:`thread_cpu_seconds` to split a process's
CPU into its event-loop thread and the others (span export, librdkafka), and
:func:`descendants` to find a worker's child processes.

    cpu0 = cpu_seconds(proc.pid); ...load...; per_cpu_s = n / (cpu_seconds(proc.pid) - cpu0)
"""

from __future__ import annotations

import os
from pathlib import Path


def _parents() -> dict[int, tuple[int, float]]:
    """Every live pid -> (parent pid, CPU seconds)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return stats


def _tree(pid: int, stats: dict[int, tuple[int, float]]) -> set[int]:
    tree = {pid}
    for _ in range(4):  # a server forks at most a couple of levels deep
        tree |= {p for p, (ppid, _) in stats.items() if ppid in tree}
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` and its live descendants."""
    stats = _parents()
    return sum(stats[p][1] for p in _tree(pid, stats) if p in stats)


def descendants(pid: int) -> set[int]:
    """Live descendants of ``pid``."""
    return _tree(pid, _parents()) - {pid}


def thread_cpu_seconds(pid: int) -> tuple[float, float]:
    """(main thread, all other threads) CPU seconds of process ``pid`` (Linux /proc)."""
    main = other = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        if int(task.name) == pid:
            main += cpu
        else:
            other += cpu
    return main, other
