"""``streamslo backtest``: replay a recording or a simulation; report what would have fired.

::

    streamslo backtest --spec SPEC --data FILE [--incidents FILE] [--report DIR] [--json FILE]
        [--eval-interval 10s] [--flush-interval 1s]
        [--sweep TRIGGER|SLO:TIER --threshold A,B,... --for A,B,... | --factor A,B,...]

Prints one line per alert family and region; ``--json`` writes the result
(``docs/backtest.md``), ``--report`` an HTML page. A progress bar runs on
stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from slo.durations import parse_duration
from slo.spec import load_spec_for_cli
from streamslo.backtest import data
from streamslo.backtest.run import Outcome, backtest

__all__ = ["main", "print_summary"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="streamslo backtest", description=__doc__.split("\n")[0])
    p.add_argument("--spec", required=True, help="the SLO spec (YAML)")
    p.add_argument("--data", required=True, help="a replay file (streamslo simulate / record / run --record)")
    p.add_argument("--incidents", help="JSON sidecar {\"incidents\": [...]} replacing the file's labels")
    p.add_argument("--report", help="directory for the HTML report (index.html)")
    p.add_argument("--json", help="file for the machine-readable result")
    p.add_argument("--eval-interval", default="10s", help="Prometheus evaluation interval (default 10s)")
    p.add_argument("--flush-interval", default="1s", help="stage-1 flush interval (default 1s)")
    p.add_argument("--sweep", help="a trigger name, or SLO:TIER, to vary over a grid")
    p.add_argument("--threshold", help="sweep: comma-separated limits (ms for latency, ratio for errors)")
    p.add_argument("--for", dest="for_", help="sweep: comma-separated for: durations")
    p.add_argument("--factor", help="sweep: comma-separated tier factors")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        spec, _ = load_spec_for_cli("backtest", args.spec)
        incidents = data.load_incidents(args.incidents) if args.incidents else None
        header = data.read_header(args.data)
        eval_s, flush_s = parse_duration(args.eval_interval), parse_duration(args.flush_interval)
    except (OSError, ValueError) as exc:
        print(f"streamslo backtest: {exc}", file=sys.stderr)
        return 2
    if args.sweep:
        from streamslo.backtest.sweep import run_sweep

        code: int = run_sweep(spec, args, incidents, eval_s, flush_s)
        return code
    console = Console(stderr=True)
    try:
        with _progress(console, header) as advance:
            outcome = backtest(spec, args.data, incidents=incidents, eval_interval_s=eval_s,
                               flush_interval_s=flush_s, progress=advance)
    except (OSError, EOFError, ValueError) as exc:  # a corrupt line or a truncated gzip
        print(f"streamslo backtest: {args.data}: {exc}", file=sys.stderr)
        return 2
    out = Console()
    print_summary(outcome, out if out.is_terminal else Console(width=200))
    if args.json:
        Path(args.json).write_text(json.dumps(outcome.result, indent=1, sort_keys=True) + "\n")
    if args.report:
        from streamslo.backtest.report import write_report

        print(f"report: {write_report(outcome, Path(args.report))}")
    return 0


class _progress:
    """A rich progress bar over the data's simulated time (silent when stderr is not a terminal)."""

    def __init__(self, console: Console, header: data.Header) -> None:
        self.header = header
        total = (header.end - header.start) if header.end else None
        self.bar = Progress(TextColumn("replay"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                            TimeElapsedColumn(), console=console, disable=not console.is_terminal)
        self.task = self.bar.add_task("replay", total=total)

    def __enter__(self) -> Callable[[float], None]:
        self.bar.start()
        return lambda now: self.bar.update(self.task, completed=now - self.header.start)

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


def print_summary(outcome: Outcome, console: Console) -> None:
    """The terminal table: one row per alert family and region, then the incidents."""
    s: dict[str, Any] = outcome.result["summary"]
    table = Table(title=f"backtest {s['source']}: {s['events']} events in {s['cpu_s']:g} s CPU")
    for col in ("alert", "slo/trigger", "tier", "region", "first fired", "resolved", "firings", "firing s",
                "detected (delay s)", "missed", "false"):
        table.add_column(col)
    for f in s["families"]:
        table.add_row(f["name"], f["slo_or_trigger"], f["tier"] or "-", f["region"], _s(f["first_fired_at"]),
                      _s(f["last_resolved_at"]), str(f["firings"]), _s(f["time_firing_s"]),
                      ", ".join(f"{k} {v:g}" for k, v in f["detected"].items()) or "-",
                      ", ".join(f["missed"]) or "-", str(f["false"]))
    console.print(table)
    for inc in outcome.result["incidents"]:
        console.print(f"incident {inc['name']} ({inc['region']}, {inc['start_s']:g}-{inc['end_s']:g} s): "
                      f"first detection +{_s(inc['first_detection_s'])} s, first page +{_s(inc['first_page_s'])} s")
    for fo in outcome.result["failover"]:
        console.print(f"failover {fo['region']}: traffic moves at {_s(fo['moved_at'])} s, back at {_s(fo['back_at'])} s")
    for sc in outcome.result["scaling"]:
        if sc["peak"] > sc["replicas"][0][1]:
            console.print(f"scale-out {sc['workload']} {sc['region']}: first scale-up at {_s(sc['first_scale_up_s'])} s,"
                          f" peak {sc['peak']} replicas")
    console.print(f"summary: {s['incidents']} incidents, {s['detected']} detected, {s['paged']} paged, "
                  f"{s['false_pages']} false pages, {s['false_alerts']} false alerts")
