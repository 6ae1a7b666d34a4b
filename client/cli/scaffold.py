"""init and up: starting a service from a template, and previewing a branch."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Final

import typer

from client.cli.deploys import JsonOption, TimeoutOption, deploy_folder
from client.cli.i18n import t
from client.cli.output import Output
from client.cli.session import fail, run
from client.cli.target import SPEC_FILE, git_facts, read_metadata

TEMPLATES: Final = ("web", "api", "worker")
LANGUAGES: Final = ("python", "node")

SPEC: Final = """apiVersion: enclii.dev/v1
kind: Service
metadata:
  project: {project}
  environment: {environment}
  name: {name}
spec:
  type: {type}
  runtime:
    cmd: {cmd}
{ports}    replicas: {{ min: 1, max: {max} }}
{health}{autoscaling}"""

# Starter programs, written only when the folder has no code of that language yet.
STARTERS: Final = {
    ("python", "server"): (
        "app.py",
        """import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok\\n" if self.path == "/healthz" else json.dumps({{"hello": "{name}"}}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
""",
    ),
    ("python", "worker"): (
        "worker.py",
        """import json
import time

while True:
    print(json.dumps({{"level": "info", "message": "{name} is working"}}), flush=True)
    time.sleep(10)
""",
    ),
    ("node", "server"): (
        "server.js",
        """const http = require("http");
const port = Number(process.env.PORT || 8080);
http.createServer((req, res) => {{
  if (req.url === "/healthz") return res.end("ok\\n");
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({{ hello: "{name}" }}));
}}).listen(port, "127.0.0.1");
""",
    ),
    ("node", "worker"): (
        "worker.js",
        """setInterval(() => console.log(JSON.stringify({{ level: "info", message: "{name} is working" }})), 10000);
""",
    ),
}


def _label(text: str) -> str:
    """A DNS label from a folder name: lower case, [a-z0-9-], at most 40."""
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:40].strip("-")
    return label or "service"


def _language(folder: Path) -> str:
    if (folder / "package.json").exists():
        return "node"
    return "python"


def init(
    template: Annotated[str, typer.Option(help="web, api or worker.")] = "web",
    language: Annotated[
        str | None, typer.Option("--lang", help="python or node (default: detected).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Service name (default: the folder's).")] = None,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Project slug.")] = None,
    env: Annotated[str, typer.Option("--env", "-e", help="Default environment.")] = "dev",
    force: Annotated[bool, typer.Option(help="Overwrite an existing enclii.yaml.")] = False,
) -> None:
    """Write an enclii.yaml for this folder from a template.

    A starter program is written too when the folder has no code of that language yet.
    """
    out = Output()
    folder = Path.cwd()
    spec_path = folder / SPEC_FILE
    if template not in TEMPLATES:
        _refuse(out, f"--template {template!r}: use one of {', '.join(TEMPLATES)}")
    chosen = language or _language(folder)
    if chosen not in LANGUAGES:
        _refuse(out, f"--lang {chosen!r}: use one of {', '.join(LANGUAGES)}")
    if spec_path.exists() and not force:
        _refuse(out, f"{SPEC_FILE} already exists here; --force overwrites it")
    service = _label(name or folder.name)
    kind = "worker" if template == "worker" else "server"
    program, code = STARTERS[(chosen, kind)]
    runner = "python" if chosen == "python" else "node"
    server = kind == "server"
    spec = SPEC.format(
        project=_label(project or folder.parent.name),
        environment=env,
        name=service,
        type="worker" if not server else "api",
        cmd=f'["{runner}", "{program}"]',
        ports="    ports: [8080]\n" if server else "",
        max=4 if template == "api" else 2,
        health=(
            "  health:\n    readiness: { httpGet: /healthz, periodSeconds: 1 }\n" if server else ""
        ),
        autoscaling=(
            "  autoscaling:\n    hpa: { cpuTargetUtilization: 70 }\n" if template == "api" else ""
        ),
    )
    spec_path.write_text(spec)
    written = [SPEC_FILE]
    has_code = any(folder.glob("*.py" if chosen == "python" else "*.js"))
    if not (folder / program).exists() and not has_code:
        (folder / program).write_text(code.format(name=service))
        written.append(program)
    elif not (folder / program).exists():
        out.note(t("init.no_program", file=SPEC_FILE, program=program))
    if chosen == "python" and not (folder / "requirements.txt").exists():
        (folder / "requirements.txt").write_text("# Your dependencies, one per line.\n")
        written.append("requirements.txt")
    if chosen == "node" and not (folder / "package.json").exists():
        (folder / "package.json").write_text(
            f'{{\n  "name": "{service}",\n  "version": "1.0.0",\n  "private": true\n}}\n'
        )
        written.append("package.json")
    out.note(
        t(
            "init.wrote",
            files=", ".join(written),
            language=chosen,
            template=template,
            service=service,
        )
    )
    out.note(t("init.next", env=env))


def _refuse(out: Output, message: str) -> None:
    out.error(message)
    raise typer.Exit(10)


def preview_environment(branch: str | None) -> str:
    """``preview-`` and a short hash of the branch: the same branch, the same environment."""
    digest = hashlib.sha256((branch or "local").encode()).hexdigest()[:8]
    return f"preview-{digest}"


def up(
    file: Annotated[Path, typer.Option("--file", "-f", help="The Service Spec.")] = Path(SPEC_FILE),
    timeout: TimeoutOption = 900.0,
    json_: JsonOption = False,
) -> None:
    """Deploy this folder to the current branch's preview environment; print its URL.

    The environment is preview-<hash of the branch>: the same branch, the same preview.
    """
    out = Output(json=json_)

    async def verb() -> None:
        if not read_metadata(file):
            fail(t("missing.spec", file=file))
        _sha, branch = git_facts(file.resolve().parent)
        environment = preview_environment(branch)
        out.note(t("up.preview", environment=environment, branch=branch or t("up.no_branch")))
        await deploy_folder(out, file, environment, None, None, True, timeout)

    run(out, verb)
