"""Grafana's dashboard JSON schema, derived from grafana-foundation-sdk's typed models.

``grafana-foundation-sdk==0.0.21`` on PyPI (wheel and sdist) ships no
``*.jsonschema.json`` file, only Python models generated (by cog) from the
same Grafana dashboard kind the upstream ``jsonschema/dashboard.jsonschema.json``
is generated from. This module turns those models into a JSON Schema
(draft 2020-12) so generated dashboards can be validated with ``jsonschema``:

- every model class becomes a definition whose properties are the JSON keys
  its ``to_json`` writes, typed from the class annotations;
- keys written unconditionally by ``to_json`` are required;
- enums become ``enum`` lists; ``Any``/``object`` accept anything;
- ``additionalProperties: false``: a key the model does not know is an error.

>>> schema = dashboard_schema()
>>> schema["$ref"]
'#/$defs/Dashboard'
"""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from typing import Any

from grafana_foundation_sdk.models import dashboard as gd

_KEY = re.compile(r'"(\w+)":\s*self\.(\w+)')
_OPTIONAL_KEY = re.compile(r'payload\["(\w+)"\]\s*=\s*self\.(\w+)')
_PRIMITIVES: dict[Any, dict[str, Any]] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
}


def _type_schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp in (Any, object):
        return {}
    if tp in _PRIMITIVES:
        return dict(_PRIMITIVES[tp])
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _type_schema(options[0], defs)
        return {"anyOf": [_type_schema(a, defs) for a in options]}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0], defs) if args else {}}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(args[1], defs) if len(args) > 1 else {}}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if inspect.isclass(tp) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if inspect.isclass(tp) and hasattr(tp, "to_json"):
        _define(tp, defs)
        return {"$ref": f"#/$defs/{tp.__name__}"}
    return {}


def _define(cls: type, defs: dict[str, Any]) -> None:
    if cls.__name__ in defs:
        return
    defs[cls.__name__] = {}  # placeholder: breaks recursion
    module = inspect.getmodule(cls)
    hints = typing.get_type_hints(cls, vars(module) if module else None)
    source = inspect.getsource(cls.to_json)  # type: ignore[attr-defined]
    head = source.split("}", 1)[0] if "payload: dict[str, object] = {" in source else ""
    required = [key for key, _ in _KEY.findall(head)]
    pairs = dict(_KEY.findall(head)) | dict(_OPTIONAL_KEY.findall(source))
    properties = {key: _type_schema(hints.get(attr, Any), defs) for key, attr in pairs.items()}
    # A key written unconditionally from an Optional attribute may be null
    # (Threshold.value: null is the base step, "-Infinity" in Grafana).
    for key in required:
        hint = hints.get(pairs[key], Any)
        if type(None) in typing.get_args(hint):
            properties[key] = {"anyOf": [properties[key], {"type": "null"}]}
    defs[cls.__name__] = {
        "type": "object",
        "properties": dict(sorted(properties.items())),
        "required": sorted(required),
        "additionalProperties": False,
    }


def dashboard_schema() -> dict[str, Any]:
    """The JSON Schema of a Grafana dashboard, as grafana-foundation-sdk 0.0.21 models it."""
    defs: dict[str, Any] = {}
    _define(gd.Dashboard, defs)
    # The SDK decodes a panel by its "type" (rows vs everything else); say so.
    panel_union = {
        "if": {"properties": {"type": {"const": "row"}}},
        "then": {"$ref": "#/$defs/RowPanel"},
        "else": {"$ref": "#/$defs/Panel"},
    }
    defs["Dashboard"]["properties"]["panels"] = {"type": "array", "items": panel_union}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": "#/$defs/Dashboard", "$defs": defs}
