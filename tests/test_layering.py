"""Imports point one way (DESIGN.md): store imports nothing of ours; resolvers and reconcile
import store; graph imports resolvers and store; client imports none of the server packages
except lazily, inside the functions of its serve and db verbs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = {"store", "resolvers", "graph", "reconcile", "client", "web"}
ALLOWED = {
    "store": set(),
    "resolvers": {"store"},
    "reconcile": {"store"},
    "graph": {"resolvers", "store", "web"},
    "client": set(),
    "web": set(),
}


def _imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.If) and top_level_only:
            for child in ast.walk(node):
                if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                    found.add(child.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package: str) -> None:
    offenders = []
    for path in sorted((REPO / package).rglob("*.py")):
        # The client's verbs may import the server lazily (inside functions) only.
        imported = _imports(path, top_level_only=package == "client")
        bad = imported - ALLOWED[package] - {package}
        if bad:
            offenders.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert offenders == []
