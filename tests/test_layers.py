"""Imports flow one way: channels → agent → knowledge, policies → tools → core; the simulator shares nothing.

Read from the source with ``ast`` (imports inside functions count too): a layer may import itself and the
layers below it, never one above. ``evals`` uses the agent and never the channels; ``simlab`` imports
nothing of LabOps (a simulator that reused its clients' code would mirror their mistakes).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "tools", "policies", "knowledge", "agent", "evals", "channels", "simlab", "bench")
# What each package may import of the others.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "tools": {"core"},
    "policies": {"core", "tools"},
    "knowledge": {"core", "tools"},
    "agent": {"core", "tools", "policies", "knowledge"},
    "evals": {"core", "tools", "policies", "knowledge", "agent", "simlab"},
    "channels": {"core", "tools", "policies", "knowledge", "agent", "evals", "simlab"},
    "simlab": set(),
    "bench": {"core", "tools", "policies", "knowledge", "agent", "simlab"},
}


def _imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(bad)
        for path in sorted((ROOT / package).rglob("*.py"))
        if (bad := _imported(path) - ALLOWED[package] - {package})
    }
    assert not wrong, f"{package} imports what it may not: {wrong}"
