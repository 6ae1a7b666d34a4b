"""Write schema.graphql from the code: ``python -m graph.codegen``.

The committed file is what the typed client and the UI are generated from; a test fails
when it is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from graph.schema import schema

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "schema.graphql"


def render() -> str:
    return schema.as_str() + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else DEFAULT_OUTPUT
    target.write_text(render())
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
