"""The package's layers, enforced: domain code never reaches into stages, resources, the CLI or the demo.

``costagent_assets`` is layered (README, "How the code is laid out"):

- domain modules (everything not listed below): pure functions on frames, Dagster-free;
- ``resources/``: outside systems, the only code that imports their clients (ruff's banned-api rule);
- ``demo/``: the demo organisation, its cost source and scanner (resources of its own);
- ``defs/``: the Dagster stages, the schedule and the resource bindings;
- ``cli/`` and ``definitions.py``: what drives the graph.

Each layer may import the ones before it, never one after it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "costagent_assets"
LAYERS = ("domain", "resources", "demo", "defs", "cli")
# What each layer must never import (its own layer and the ones before it are allowed).
FORBIDDEN = {
    "domain": {"resources", "demo", "defs", "cli", "definitions"},
    "resources": {"demo", "defs", "cli", "definitions"},
    "demo": {"defs", "cli", "definitions"},
    "defs": {"cli", "definitions"},
    "cli": set(),
}
# Dagster's own instance storage plugin (named in dagster.yaml): infrastructure, not domain code.
DAGSTER_PLUGINS = {"instance_storage", "instance_postgres"}


def layer_of(module: str) -> str:
    """The layer of a module path inside the package (``defs.emails`` -> ``defs``)."""
    top = module.split(".")[0]
    if top in ("resources", "demo", "defs", "cli"):
        return top
    return "cli" if top == "definitions" else "domain"


def modules() -> list[tuple[str, Path]]:
    """Every module of the package, as (dotted path inside the package, file)."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        out.append((".".join(p for p in parts if p != "__init__") or "__init__", path))
    return out


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in ``path``, function-level imports included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # ``from costagent_assets import demo`` names a subpackage, not an attribute.
            if node.module == "costagent_assets":
                found += [(node.lineno, f"costagent_assets.{alias.name}") for alias in node.names]
    return found


def violations() -> list[str]:
    """Every import that crosses a layer the wrong way, as 'file:line: module imports target'."""
    out = []
    for name, path in modules():
        if name in DAGSTER_PLUGINS:
            continue
        layer = layer_of(name)
        for line, target in imported(path):
            where = f"{path.relative_to(PACKAGE.parent)}:{line}"
            if target.startswith("costagent_assets."):
                inner = target.removeprefix("costagent_assets.")
                if inner.split(".")[0] in FORBIDDEN[layer]:
                    out.append(f"{where}: {layer} module imports {target}")
            elif layer == "domain" and target.split(".")[0] == "dagster":
                out.append(f"{where}: domain module imports {target} (domain code is Dagster-free)")
    return out


def test_no_module_imports_a_layer_above_its_own():
    assert violations() == []


@pytest.mark.parametrize(
    ("module", "layer"),
    [("analysis", "domain"), ("warehouse.store", "domain"), ("resources.smtp", "resources"),
     ("demo.scanner", "demo"), ("defs.emails", "defs"), ("cli.main", "cli"), ("definitions", "cli")],
)
def test_layers_are_read_from_the_path(module, layer):
    assert layer_of(module) == layer


def test_the_check_catches_a_domain_module_importing_a_stage(tmp_path, monkeypatch):
    package = tmp_path / "costagent_assets"
    (package / "defs").mkdir(parents=True)
    (package / "defs" / "emails.py").write_text("")
    (package / "reporting.py").write_text("import dagster\n\ndef f():\n    from costagent_assets.defs import emails\n")
    (package / "resources").mkdir()
    (package / "resources" / "smtp.py").write_text("from costagent_assets import cli\n")
    monkeypatch.setitem(globals(), "PACKAGE", package)
    found = violations()
    assert any("reporting.py:4: domain module imports costagent_assets.defs" in v for v in found)
    assert any("reporting.py:1: domain module imports dagster" in v for v in found)
    assert any("smtp.py:1: resources module imports costagent_assets.cli" in v for v in found)
