"""``streamslo validate --spec FILE``: print every problem, exit 1 on errors.

A file that cannot be read or is not YAML: one line and exit 2
(:func:`slo.spec.load_spec_for_cli`).
"""

from __future__ import annotations

import argparse
import sys

from slo.spec import DEFAULT_SPEC_PATH, load_spec_for_cli


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="streamslo validate", description=__doc__)
    parser.add_argument("--spec", default=str(DEFAULT_SPEC_PATH), help="SLO spec file (YAML)")
    args = parser.parse_args(argv)
    spec, problems = load_spec_for_cli("validate", args.spec, strict=False)
    for problem in problems:
        print(f"{args.spec}: {problem}")
    errors = sum(p.is_error for p in problems)
    if errors:
        print(f"{args.spec}: {errors} error(s)", file=sys.stderr)
        return 1
    print(f"{args.spec}: ok ({len(spec.slos)} SLOs, {len(spec.regions)} regions, {len(problems)} warning(s))")
    return 0
