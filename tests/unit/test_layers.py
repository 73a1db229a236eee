"""The package layering (docs/testbed.md): a pure decision core and protocol, the
Ryu side and the host side each building on them and never on each other."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# package -> top-level project packages it must never import (also lazily, inside functions)
FORBIDDEN = {
    "protocol": {"agents", "controller", "runtime", "topologies", "scripts"},
    "agents": {"controller", "runtime", "topologies", "scripts"},
    "models": {"controller", "runtime", "topologies", "scripts"},
    "runtime": {"controller", "topologies", "scripts"},
    "controller": {"runtime", "topologies", "scripts"},
}
# the exceptions, by module: plan requests name methods, and the registry (stdlib only) owns their names
ALLOWED = {"protocol": {"agents.registry"}}


def imported_modules(path):
    """(line, module) of every import in a module, nested ones included."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_the_layers_below(package):
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules, f"no modules under {package}/"
    crossings = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                 for path in modules for line, name in imported_modules(path)
                 if name.split(".")[0] in FORBIDDEN[package] and name not in ALLOWED.get(package, ())]
    assert not crossings, crossings


def test_the_check_sees_nested_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from controller.view import GlobalView\n")
    assert list(imported_modules(module)) == [(2, "controller.view")]


@pytest.mark.parametrize("module", ["protocol.wire", "protocol.task_plan", "protocol.plan_request",
                                    "protocol.heartbeat", "controller.config"])
def test_light_modules_load_without_torch(module):
    """Hosts decode messages and `sdncep check` reads a controller config without loading torch."""
    code = f"import sys, {module}; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
