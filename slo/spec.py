"""The versioned SLO spec file (``apiVersion: streamslo/v1``) and its mapping to the model.

Use :func:`load_spec` for a file and :func:`parse_spec` for an already-parsed
mapping (the field-by-field reading is ``slo/spec_reader.py``). Both return the model and every problem found, each with its field
path; with ``strict=True`` (the default) errors raise :class:`SpecError`.

>>> spec, warnings = load_spec(DEFAULT_SPEC_PATH)
>>> spec.slo("ttff-p95").threshold_s
0.2

The file format is documented in ``docs/spec.md``; ``slo/specs/default.yaml``
encodes the platform's targets.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from slo.model import Spec
from slo.spec_reader import Reader, read_spec
from slo.validation import Problem, check_model

DEFAULT_SPEC_PATH = Path(__file__).parent / "specs" / "default.yaml"


class SpecError(ValueError):
    """The spec has errors; ``problems`` lists all of them."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"invalid spec {source}:\n{lines}")


class SpecFileError(SpecError):
    """The spec file cannot be read (missing, a directory, no permission) or is not UTF-8 YAML."""

    def __init__(self, path: Path, reason: str) -> None:
        self.reason = reason
        super().__init__(str(path), [Problem("<file>", reason)])


# Exit code of every command whose --spec file cannot be read or parsed.
EXIT_SPEC_UNREADABLE = 2


def load_spec(path: str | Path | None = None, *, strict: bool = True) -> tuple[Spec, list[Problem]]:
    """Read and validate the spec at ``path`` (the default spec when None).

    Raises :class:`SpecFileError` when the file cannot be read or parsed, and
    :class:`SpecError` (strict) when the spec has errors.
    """
    path = Path(path) if path is not None else DEFAULT_SPEC_PATH
    return parse_spec(_read_document(path), source=str(path), strict=strict)


def load_spec_for_cli(command: str, path: str | Path | None, *, strict: bool = True) -> tuple[Spec, list[Problem]]:
    """:func:`load_spec` for ``streamslo <command> --spec``: an unreadable file ends the program.

    Prints one line, ``streamslo <command>: <path>: <reason>``, on stderr and
    exits :data:`EXIT_SPEC_UNREADABLE` (``SystemExit``, as argparse does for a
    usage error). An invalid spec still raises :class:`SpecError`: each command
    maps it to its own documented exit code.
    """
    try:
        return load_spec(path, strict=strict)
    except SpecFileError as exc:
        print(f"streamslo {command}: {exc.source}: {exc.reason}", file=sys.stderr)
        raise SystemExit(EXIT_SPEC_UNREADABLE) from None


def _read_document(path: Path) -> Any:
    """The parsed YAML document at ``path``; :class:`SpecFileError` with a one-line reason."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecFileError(path, exc.strerror or str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise SpecFileError(path, f"not UTF-8 text (byte {exc.start})") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecFileError(path, f"not valid YAML: {_yaml_reason(exc)}") from exc


def _yaml_reason(exc: yaml.YAMLError) -> str:
    """PyYAML's error in one line: what is wrong and where (its own text quotes the source)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem and exc.problem_mark:
        mark = exc.problem_mark
        return f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


def parse_spec(raw: Any, *, source: str = "<memory>", strict: bool = True) -> tuple[Spec, list[Problem]]:
    """Map a parsed YAML document into the model.

    Returns ``(spec, problems)``. With ``strict`` any error raises
    :class:`SpecError`; otherwise the returned spec may be partial and must
    not be used when ``problems`` holds errors.
    """
    reader = Reader()
    spec = read_spec(reader, raw, source)
    problems = reader.problems
    if not any(p.is_error for p in problems):
        problems += check_model(spec)
    if strict and any(p.is_error for p in problems):
        raise SpecError(source, [p for p in problems if p.is_error])
    return spec, problems
