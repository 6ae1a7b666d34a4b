"""Write spec/service.schema.json from the pydantic models: ``python -m store.spec.schema_export``.

Editors (VS Code's YAML extension, JetBrains) use it to complete and check enclii.yaml; a
test fails when the committed file is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from store.spec.model import ServiceSpec

DEFAULT_OUTPUT = Path(__file__).resolve().parents[2] / "spec" / "service.schema.json"


def json_schema() -> dict[str, Any]:
    schema = ServiceSpec.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def render() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else DEFAULT_OUTPUT
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render())
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
