"""``streamslo generate --spec FILE --out DIR``: write every generated artifact.

Exit 0 and one line per file written; 1 with the spec problems when the spec
is invalid. Deployment details the spec does not hold (PagerDuty URL and
routing-key file, ticket webhook, runbook base URL, Prometheus URL for
Grafana) are options. Example::

    streamslo generate --spec slo/specs/default.yaml --out examples/generated
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from alerts import alertmanager
from alerts.generate import Options, generate, write
from slo.spec import SpecError, load_spec

__all__ = ["main", "spec_label"]


def spec_label(path: str) -> str:
    """The spec path as written in headers: relative to the working directory when inside it."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="streamslo generate", description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=None, help="SLO spec file (default: the built-in spec)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--runbook-base", default="docs/runbooks.md", help="runbook URL before '#anchor'")
    parser.add_argument("--pagerduty-url", default=alertmanager.PAGERDUTY_EVENTS_URL)
    parser.add_argument("--routing-key-file", default=alertmanager.ROUTING_KEY_FILE)
    parser.add_argument("--ticket-webhook-url", default=alertmanager.TICKET_WEBHOOK_URL)
    parser.add_argument("--prometheus-url", default="http://localhost:9090", help="for Grafana provisioning")
    args = parser.parse_args(argv)
    try:
        spec, problems = load_spec(args.spec)
    except SpecError as exc:
        print(f"streamslo generate: {exc}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"streamslo generate: {problem}", file=sys.stderr)
    label = spec_label(args.spec) if args.spec else "slo/specs/default.yaml"
    options = Options(
        runbook_base=args.runbook_base,
        pagerduty_url=args.pagerduty_url,
        routing_key_file=args.routing_key_file,
        ticket_webhook_url=args.ticket_webhook_url,
        prometheus_url=args.prometheus_url,
    )
    for path in write(generate(spec, label, options), args.out):
        print(os.fspath(path))
    return 0
