"""Generate the typed client (``client/api/``) from ``schema.graphql`` and the CLI's
operations (``client/operations/*.graphql``) with ariadne-codegen.

    python -m client.codegen           # regenerate client/api/
    python -m client.codegen --check   # exit 1 if client/api/ is stale

ariadne-codegen pins graphql-core below 3.3 and the server needs 3.3, so it runs in an
environment of its own (``.cache/codegen-<hash>/``, created on first use from the exact
versions in ``client/codegen-requirements.txt``): the same versions give the same output
on every machine, which is what lets a test say the committed client is stale.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[1]
CLIENT: Final = REPO / "client"
TARGET: Final = CLIENT / "api"
OPERATIONS: Final = CLIENT / "operations"
TEMPLATE: Final = CLIENT / "templates" / "base_client.py"
REQUIREMENTS: Final = CLIENT / "codegen-requirements.txt"
SCHEMA: Final = REPO / "schema.graphql"

# Scalars the schema defines, as the Python types the client should see.
SCALARS: Final = {
    "DateTime": "datetime.datetime",
    "JSON": "typing.Any",
}


def environment() -> Path:
    """The codegen environment's ``ariadne-codegen``, installed on first use."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    home = REPO / ".cache" / f"codegen-{digest}"
    executable = home / "bin" / "ariadne-codegen"
    if executable.exists():
        return executable
    shutil.rmtree(home, ignore_errors=True)
    print(f"creating the codegen environment in {home.relative_to(REPO)}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
    subprocess.run(
        [str(home / "bin" / "pip"), "install", "--quiet", "--no-deps", "-r", str(REQUIREMENTS)],
        check=True,
    )
    return executable


def config(target_parent: Path) -> str:
    scalars = "".join(
        f'\n[tool.ariadne-codegen.scalars.{name}]\ntype = "{python}"\n'
        for name, python in SCALARS.items()
    )
    return f"""[tool.ariadne-codegen]
schema_path = "{SCHEMA}"
queries_path = "{OPERATIONS}"
target_package_name = "api"
target_package_path = "{target_parent}"
client_name = "EncliiClient"
base_client_name = "GqlBaseClient"
base_client_file_path = "{TEMPLATE}"
include_comments = "none"
{scalars}"""


def generate(into: Path) -> Path:
    """Generate the client into ``into/api`` and return that folder."""
    settings = into / "codegen.toml"
    settings.write_text(config(into))
    result = subprocess.run(
        [str(environment()), "--config", str(settings)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"ariadne-codegen failed (exit {result.returncode})")
    package = into / "api"
    (package / "py.typed").touch()
    return package


def differences(left: Path, right: Path) -> list[str]:
    """Files that differ between two generated trees (added, removed or changed)."""
    names = {p.relative_to(left) for p in left.rglob("*.py")} | {
        p.relative_to(right) for p in right.rglob("*.py")
    }
    return sorted(
        str(name)
        for name in names
        if not (left / name).exists()
        or not (right / name).exists()
        or not filecmp.cmp(left / name, right / name, shallow=False)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if client/api is stale")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="enclii-codegen-") as scratch:
        fresh = generate(Path(scratch))
        stale = differences(fresh, TARGET) if TARGET.exists() else ["(client/api is missing)"]
        if args.check:
            if stale:
                print(
                    "client/api is stale; regenerate it with `python -m client.codegen`: "
                    + ", ".join(stale),
                    file=sys.stderr,
                )
                return 1
            return 0
        shutil.rmtree(TARGET, ignore_errors=True)
        shutil.copytree(fresh, TARGET, ignore=shutil.ignore_patterns("__pycache__"))
    print(f"wrote {TARGET.relative_to(REPO)}/ ({len(stale)} files changed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
