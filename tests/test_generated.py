"""Generated artefacts are committed and current: a stale one fails here, naming the
command that regenerates it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from graph import codegen

REPO = Path(__file__).resolve().parents[1]


def test_schema_graphql_is_current() -> None:
    committed = (REPO / "schema.graphql").read_text()
    assert committed == codegen.render(), (
        "schema.graphql is stale; regenerate it with `python -m graph.codegen`"
    )


def test_the_typed_client_is_current() -> None:
    """client/api regenerated from schema.graphql and client/operations is what is
    committed (ariadne-codegen, in its own pinned environment, created on first use)."""
    result = subprocess.run(
        [sys.executable, "-m", "client.codegen", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
