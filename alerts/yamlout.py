"""Deterministic YAML for generated files: literal blocks for multi-line strings.

Use :func:`dump` for every generated YAML artifact so the output is stable
(insertion order kept, no line folding) and PromQL stays readable in review.

>>> print(dump({"expr": "a\\nor\\nb"}, header="# h"), end="")
# h
expr: |-
  a
  or
  b
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["dump", "dump_all"]


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def dump(data: Any, header: str) -> str:
    """``header`` line(s), then ``data`` as block YAML in insertion order."""
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=10_000, allow_unicode=True)
    return f"{header}\n{body}"


def dump_all(documents: list[Any], header: str) -> str:
    """``header``, then ``documents`` as a multi-document YAML stream (``---`` between)."""
    bodies = [dump(doc, "").lstrip("\n") for doc in documents]
    return f"{header}\n" + "---\n".join(bodies)
