"""``shared/`` is the leaf of the package graph: both sides import it, it imports neither."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared.paths import REPO_ROOT

# Every other top-level package of the project.
HIGHER = frozenset({"varta", "central", "edge_agent", "bench", "models"})
SHARED = REPO_ROOT / "shared"


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every absolute import in a module, at any depth (lazy ones too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(SHARED.rglob("*.py")), ids=lambda p: p.name)
def test_shared_imports_no_higher_package(path: Path) -> None:
    assert imported_packages(path) & HIGHER == set(), f"{path.name} reaches above shared/"


def test_the_check_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\ndef f():\n    from central import X\n    import bench.cli\n")
    assert imported_packages(module) == {"os", "central", "bench"}
