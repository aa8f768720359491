"""Imports point down the layers (issue 18), checked statically over the source.

``streamslo/`` (CLI, embedded, generate, backtest, status) is the top and may
import everything; ``collector/``, ``alerts/`` and ``dashboards/`` stand on
``slo/`` only and never on each other; the modules directly in ``slo/`` are
pure domain logic, with no web, stream, Kafka, metrics or tracing framework
and none of the adapters built on them (``slo/stream``, ``slo/telemetry``,
``slo/exposition``); ``slo/telemetry/`` (OpenTelemetry) knows only ``slo.conventions``. Nothing is
imported: each file is parsed with :mod:`ast`, relative imports are resolved,
and ``from a import b`` counts as importing ``a.b``. Imports under
``if TYPE_CHECKING:`` count too: a type is a dependency.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

PROJECT = ("alerts", "bench", "collector", "dashboards", "scripts", "slo", "streamslo", "tests")
FRAMEWORKS = ("fastapi", "starlette", "faust", "aiokafka", "kafka", "confluent_kafka",
              "prometheus_client", "opentelemetry", "httpx", "uvicorn", "granian")
ADAPTERS = ("slo.stream", "slo.telemetry", "slo.exposition")


@dataclass(frozen=True)
class Rule:
    """Files (globs under the root) and what they must not import.

    ``forbidden``: module prefixes none of the files may import. ``allowed``:
    when set, the only project modules (prefixes) the files may import.
    """

    files: tuple[str, ...]
    forbidden: tuple[str, ...] = ()
    allowed: tuple[str, ...] | None = None


RULES = [
    pytest.param(Rule(("slo/**/*.py", "collector/**/*.py"), forbidden=("streamslo",)),
                 id="slo and collector never import streamslo"),
    pytest.param(Rule(("dashboards/**/*.py",), forbidden=("alerts",)),
                 id="dashboards never imports alerts"),
    pytest.param(Rule(("alerts/**/*.py",), forbidden=("dashboards",)),
                 id="alerts never imports dashboards"),
    pytest.param(Rule(("slo/*.py",), forbidden=FRAMEWORKS),
                 id="the pure slo modules import no web, stream, Kafka, metrics or tracing framework"),
    pytest.param(Rule(("slo/*.py",), forbidden=ADAPTERS),
                 id="the pure slo modules import none of slo's adapter subpackages"),
    pytest.param(Rule(("slo/telemetry/**/*.py",), allowed=("slo.conventions", "slo.telemetry")),
                 id="slo.telemetry imports only slo.conventions from the project"),
    pytest.param(Rule(("collector/**/*.py",), allowed=("slo", "collector")),
                 id="collector imports only slo from the project"),
    pytest.param(Rule(("alerts/**/*.py",), allowed=("slo", "alerts")),
                 id="alerts imports only slo from the project"),
    pytest.param(Rule(("dashboards/**/*.py",), allowed=("slo", "dashboards")),
                 id="dashboards imports only slo from the project"),
    pytest.param(Rule(("slo/**/*.py",), allowed=("slo",)),
                 id="slo imports nothing of the project above it"),
]


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """``(line, dotted module)`` for every import in ``path``, relative ones resolved."""
    package = list(path.relative_to(root).parts[:-1])  # for a module and an __init__.py alike
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(rule: Rule, root: Path) -> list[str]:
    """``file:line imports module`` for each import that breaks ``rule``."""
    files = sorted({f for pattern in rule.files for f in root.glob(pattern)})
    assert files, f"{rule.files} match no file: the rule would pass vacuously"
    bad = []
    for path in files:
        for line, module in imported_modules(path, root):
            forbidden = any(under(module, p) for p in rule.forbidden)
            outside = (rule.allowed is not None and module.split(".")[0] in PROJECT
                       and not any(under(module, p) for p in rule.allowed))
            if forbidden or outside:
                bad.append(f"{path.relative_to(root)}:{line} imports {module}")
    return bad


@pytest.mark.parametrize("rule", RULES)
def test_imports_point_down(rule: Rule) -> None:
    bad = violations(rule, ROOT)
    assert not bad, "\n".join(bad)


SELF_CHECKS = [
    pytest.param("slo/stream/app.py", "from ..record import x\n",
                 Rule(("slo/**/*.py",), forbidden=("slo.record",)), ["slo/stream/app.py:1 imports slo.record.x"],
                 id="a relative import is resolved against the file's package"),
    pytest.param("slo/telemetry/__init__.py", "from . import spans\nfrom slo import spec\n",
                 Rule(("slo/telemetry/*.py",), allowed=("slo.telemetry",)),
                 ["slo/telemetry/__init__.py:2 imports slo.spec"],
                 id="a package's own relative import is allowed, another project module is not"),
    pytest.param("collector/app.py", "import json\nimport streamslo.cli\n",
                 Rule(("collector/*.py",), forbidden=("streamslo",)), ["collector/app.py:2 imports streamslo.cli"],
                 id="a plain import of a forbidden package is found, the standard library is not"),
    pytest.param("slo/model.py", "def f():\n    from fastapi import FastAPI\n",
                 Rule(("slo/*.py",), forbidden=FRAMEWORKS), ["slo/model.py:2 imports fastapi.FastAPI"],
                 id="an import inside a function is found"),
    pytest.param("alerts/rules.py", "from slo import promql\nfrom dashboards.panels import p\n",
                 Rule(("alerts/*.py",), allowed=("slo", "alerts")),
                 ["alerts/rules.py:2 imports dashboards.panels.p"],
                 id="an allowed-list rule flags a project import outside it"),
]


@pytest.mark.parametrize(("relative", "source", "rule", "expected"), SELF_CHECKS)
def test_the_scanner_sees_imports(tmp_path: Path, relative: str, source: str, rule: Rule,
                                  expected: list[str]) -> None:
    (tmp_path / relative).parent.mkdir(parents=True)
    (tmp_path / relative).write_text(source)
    assert violations(rule, tmp_path) == expected


def test_the_scanner_finds_the_collectors_real_fastapi_import() -> None:
    modules = [m for _, m in imported_modules(ROOT / "collector" / "app.py", ROOT)]
    assert any(under(m, "fastapi") for m in modules), modules
