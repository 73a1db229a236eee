"""The package layering (docs/testbed.md): a pure decision core and protocol, the
Ryu side and the host side each building on them and never on each other."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# package -> top-level project packages it must never import (also lazily, inside functions)
FORBIDDEN = {
    "protocol": {"controller", "runtime", "topologies", "scripts"},
    "agents": {"controller", "runtime", "topologies", "scripts"},
    "models": {"controller", "runtime", "topologies", "scripts"},
    "runtime": {"controller", "topologies", "scripts"},
    "controller": {"runtime", "topologies", "scripts"},
}


def imported_packages(path):
    """(line, top-level package) of every import in a module, nested ones included."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_the_layers_below(package):
    crossings = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                 for path in sorted((ROOT / package).rglob("*.py"))
                 for line, name in imported_packages(path) if name in FORBIDDEN[package]]
    assert not crossings, crossings


def test_the_check_sees_nested_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from controller.view import GlobalView\n")
    assert list(imported_packages(module)) == [(2, "controller")]
