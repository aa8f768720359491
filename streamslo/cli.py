"""The ``streamslo`` command: one entry point, one module per subcommand.

Each subcommand lives in the package that owns it and exposes
``main(argv: list[str]) -> int``; this module only dispatches, importing the
subcommand lazily so ``streamslo validate`` does not pay for Faust or FastAPI.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("streamslo.embedded", "embedded all-in-one: collector + engine + /metrics + status page"),
    "collector": ("collector.cli", "the ingest API, producing beacons to Kafka"),
    "worker": ("slo.stream.cli", "a Faust stream worker (stage 1 and stage 2)"),
    "generate": ("streamslo.generate", "write Prometheus rules, promtool tests, Alertmanager config, dashboards"),
    "validate": ("streamslo.validate", "check an SLO spec; one line per problem"),
    "probe": ("streamslo.probe", "synthetic probe: HLS time-to-first-segment and interaction RTT"),
    "simulate": ("streamslo.backtest.simulate", "write seeded synthetic traffic (a replay file) from a scenario"),
    "backtest": ("streamslo.backtest.cli", "replay traffic through the engine, alerts and triggers; report"),
    "record": ("streamslo.backtest.record", "record the beacons topic between two times into a replay file"),
}


def usage() -> str:
    lines = ["usage: streamslo COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'streamslo COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"streamslo: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    result: int = module.main(rest)
    return result


if __name__ == "__main__":
    sys.exit(main())
