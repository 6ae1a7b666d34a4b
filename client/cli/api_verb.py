"""api: any GraphQL operation, for ad-hoc use — the same API the CLI and the UI use."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from client.cli.output import Output
from client.cli.session import client, fail, run


def api(
    query: Annotated[
        str, typer.Argument(help="The operation; @FILE reads it from a file, - from stdin.")
    ],
    var: Annotated[
        list[str] | None,
        typer.Option("--var", "-v", help="A variable: name=value (value as JSON, else a string)."),
    ] = None,
    variables: Annotated[
        str | None, typer.Option("--variables", help="All variables as one JSON object.")
    ] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Accepted for symmetry: the answer is always JSON.")
    ] = True,
) -> None:
    """Run any GraphQL operation and print the JSON answer.

    A subscription prints each event as a line of NDJSON until it ends or you press Ctrl-C.
    """
    out = Output(json=True)

    async def verb() -> None:
        from graphql import GraphQLSyntaxError, OperationDefinitionNode, OperationType, parse

        text = _read(query)
        values = _variables(var or [], variables)

        try:
            document = parse(text)
        except GraphQLSyntaxError as exc:
            fail(
                f"the operation does not parse: {exc.message} (line {exc.locations[0].line if exc.locations else '?'})"
            )
        kinds = {
            d.operation for d in document.definitions if isinstance(d, OperationDefinitionNode)
        }
        async with client() as session:
            if OperationType.SUBSCRIPTION in kinds:
                async for data in session.execute_ws(text, variables=values):
                    out.record({"data": data})
                return
            result = await session.execute(text, variables=values)
            data = session.get_data(result)  # errors raise, with their codes
            out.document({"data": data})

    run(out, verb)


def _read(query: str) -> str:
    if query == "-":
        return sys.stdin.read()
    if query.startswith("@"):
        path = Path(query[1:])
        try:
            return path.read_text()
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror}")
    return query


def _variables(pairs: list[str], whole: str | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if whole is not None:
        try:
            loaded = json.loads(whole)
        except ValueError as exc:
            fail(f"--variables is not JSON: {exc}")
        if not isinstance(loaded, dict):
            fail("--variables must be a JSON object")
        values.update(loaded)
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            fail(f"--var {pair!r}: write name=value")
        try:
            values[name] = json.loads(raw)
        except ValueError:
            values[name] = raw
    return values
