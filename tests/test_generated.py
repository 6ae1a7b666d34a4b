"""Generated artefacts are committed and current: a stale one fails here, naming the
command that regenerates it."""

from __future__ import annotations

from pathlib import Path

from graph import codegen

REPO = Path(__file__).resolve().parents[1]


def test_schema_graphql_is_current() -> None:
    committed = (REPO / "schema.graphql").read_text()
    assert committed == codegen.render(), (
        "schema.graphql is stale; regenerate it with `python -m graph.codegen`"
    )
