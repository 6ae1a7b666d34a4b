"""Reading a Service Spec document: YAML with line numbers, templating, validation.

Errors name the path and the line (``spec.runtime.replicas: min 6 is greater than max 5
(line 12)``) and every problem in the document is reported at once.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import yaml
from pydantic import BaseModel, ValidationError

from store.errors import SpecError, SpecProblem
from store.models.enums import ServiceType
from store.spec.model import DEFAULT_PORT, ServiceSpec

MAX_DOCUMENT_BYTES: Final = 256 * 1024
MAX_DEPTH: Final = 32
# Aliases can make a small document expand enormously ("billion laughs"); no real spec
# comes near this many values.
MAX_VALUES: Final = 20_000
_TEMPLATE: Final = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class LoadedSpec:
    spec: ServiceSpec
    rendered_yaml: str
    digest: str  # sha256 over the normalised document

    def normalised(self) -> dict[str, Any]:
        return normalised_dict(self.spec)


def normalised_dict(spec: ServiceSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", by_alias=True, exclude_none=True)


def digest_of(document: Mapping[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


class _TooComplex(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.problem = SpecProblem((), message, line)


class _Reader:
    """Builds plain Python data from a composed YAML node tree, remembering the line of
    every key and item, refusing duplicate keys, and filling in ``{{ … }}`` templates.
    Self-referencing aliases, deep nesting and alias bombs are refused, not followed."""

    def __init__(self, text: str, variables: Mapping[str, str | None]) -> None:
        self.text = text
        self.lines: dict[Path, int] = {}
        self.problems: list[SpecProblem] = []
        self.variables = variables
        self.visited = 0
        self.open_nodes: set[int] = set()

    def read(self) -> Any:
        self.loader = yaml.SafeLoader(self.text)
        try:
            node = self.loader.get_single_node()
        finally:
            self.loader.dispose()
        if node is None:
            return None
        self.lines[()] = node.start_mark.line + 1
        return self._value(node, ())

    def _value(self, node: yaml.Node, path: Path) -> Any:
        line = node.start_mark.line + 1
        self.visited += 1
        if self.visited > MAX_VALUES:
            raise _TooComplex(
                f"the document expands to more than {MAX_VALUES} values; write it out "
                "without nested aliases",
                line,
            )
        if len(path) > MAX_DEPTH:
            raise _TooComplex(f"the document nests deeper than {MAX_DEPTH} levels", line)
        if id(node) in self.open_nodes:
            raise _TooComplex("an alias refers to a node that contains it", line)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            self.open_nodes.add(id(node))
            try:
                return self._collection(node, path)
            finally:
                self.open_nodes.discard(id(node))
        value = self.loader.construct_object(node, deep=True)
        if isinstance(value, str) and "{{" in value:
            return self._render(value, path, line)
        return value

    def _collection(self, node: yaml.Node, path: Path) -> Any:
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if not isinstance(key, str):
                    self.problems.append(SpecProblem(path, f"key {key!r} must be a string", line))
                    continue
                child = (*path, key)
                if key in out:
                    self.problems.append(SpecProblem(child, "is set twice; keep one", line))
                    continue
                self.lines[child] = line
                out[key] = self._value(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                child = (*path, index)
                self.lines[child] = item.start_mark.line + 1
                items.append(self._value(item, child))
            return items
        raise AssertionError(f"not a collection: {node!r}")  # pragma: no cover

    def _render(self, value: str, path: Path, line: int) -> str:
        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.variables:
                known = ", ".join(sorted(self.variables)) or "none"
                self.problems.append(
                    SpecProblem(
                        path,
                        f"unknown template variable {name!r} (known: {known})",
                        line,
                    )
                )
                return match.group(0)
            replacement = self.variables[name]
            if replacement is None:
                self.problems.append(
                    SpecProblem(
                        path,
                        f"{{{{ {name} }}}} has no value here; apply from a git checkout or "
                        f"pass it explicitly (gitSha)",
                        line,
                    )
                )
                return match.group(0)
            return replacement

        return _TEMPLATE.sub(substitute, value)


def _line_for(lines: Mapping[Path, int], path: Path) -> int | None:
    # A missing key has no line of its own: point at the nearest enclosing one.
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


_MESSAGES: Final = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
}


def _model_at(path: Path) -> type[BaseModel] | None:
    """The spec model that owns the mapping at ``path`` (to suggest field names)."""
    model: type[BaseModel] = ServiceSpec
    for part in path:
        if isinstance(part, int):
            continue
        field = next(
            (f for name, f in model.model_fields.items() if (f.alias or name) == part), None
        )
        if field is None:
            return None
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        nested = next(
            (
                c
                for c in candidates
                for c in (c, *typing.get_args(c))
                if isinstance(c, type) and issubclass(c, BaseModel)
            ),
            None,
        )
        if nested is None:
            return None
        model = nested
    return model


def _unknown_field_message(path: Path) -> str:
    model = _model_at(path[:-1])
    if model is None:
        return "is not a known field"
    known = [f.alias or name for name, f in model.model_fields.items()]
    close = difflib.get_close_matches(str(path[-1]), known, n=1)
    if close:
        return f"is not a known field; did you mean {close[0]!r}?"
    return f"is not a known field (known: {', '.join(known)})"


def _pydantic_problems(exc: ValidationError, lines: Mapping[Path, int]) -> list[SpecProblem]:
    problems = []
    for error in exc.errors(include_url=False):
        path: Path = tuple(error["loc"])
        message = _MESSAGES.get(error["type"], error["msg"])
        if error["type"] == "extra_forbidden":
            message = _unknown_field_message(path)
        elif error["type"] == "literal_error" or error["type"] in (
            "int_type",
            "int_parsing",
            "string_type",
            "list_type",
        ):
            message = f"{message}, got {error['input']!r}"
        problems.append(SpecProblem(path, message, _line_for(lines, path)))
    return problems


def _semantic_problems(spec: ServiceSpec) -> list[tuple[Path, str]]:
    body = spec.spec
    problems: list[tuple[Path, str]] = []
    if body.type is not ServiceType.API:
        if body.routes:
            problems.append(
                (("spec", "routes"), f"a {body.type.value} has no routes; set type: api")
            )
        if body.type is ServiceType.JOB and body.runtime.replicas.min > 0:
            problems.append(
                (
                    ("spec", "runtime", "replicas", "min"),
                    "a job runs only when triggered; set replicas.min to 0",
                )
            )
    ports = body.runtime.ports or ([DEFAULT_PORT] if body.type is ServiceType.API else [])
    for kind in ("readiness", "liveness", "startup"):
        probe = getattr(body.health, kind)
        if probe is None:
            continue
        target = probe.http_get or probe.tcp
        field = "httpGet" if probe.http_get else "tcp"
        if target.port is None and not ports:
            problems.append(
                (("spec", "health", kind, field), "names no port and the service has none")
            )
        elif target.port is not None and target.port not in ports:
            problems.append(
                (
                    ("spec", "health", kind, field, "port"),
                    f"port {target.port} is not one of the service's ports {ports}",
                )
            )
    hpa = body.autoscaling.hpa
    replicas = body.runtime.replicas
    if hpa is not None and replicas.upper <= max(replicas.min, 1):
        problems.append(
            (
                ("spec", "autoscaling", "hpa"),
                f"autoscaling needs room to scale: replicas.max ({replicas.upper}) must be "
                f"greater than {max(replicas.min, 1)}",
            )
        )
    return problems


def _with_defaults(spec: ServiceSpec) -> ServiceSpec:
    """Make implicit defaults explicit, so the stored version says what will run."""
    document = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    runtime = document["spec"]["runtime"]
    if not runtime["ports"] and spec.spec.type is ServiceType.API:
        runtime["ports"] = [DEFAULT_PORT]
    runtime["replicas"]["max"] = spec.spec.runtime.replicas.upper
    if "image" not in runtime and "build" not in runtime:
        runtime["build"] = {"context": ".", "builder": "auto"}
    return ServiceSpec.model_validate(document)


def load_spec(
    text: str,
    *,
    git_sha: str | None = None,
    git_branch: str | None = None,
    environment: str | None = None,
) -> LoadedSpec:
    """Parse, render and validate a Service Spec; raise SpecError naming every problem.

    ``environment`` replaces ``metadata.environment`` (``enclii deploy --env prod`` with
    the same enclii.yaml as stage), in the document and in its rendered text.

    Problems come in stages: YAML syntax, then the fields, then rules across fields (a
    probe's port must be one of the ports). Every problem of the first failing stage is
    reported at once.
    """
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise SpecError(
            [SpecProblem((), f"the document is not valid text (character {exc.start})")]
        ) from None
    if size > MAX_DOCUMENT_BYTES:
        raise SpecError(
            [SpecProblem((), f"the document is larger than {MAX_DOCUMENT_BYTES // 1024} KiB")]
        )
    variables: dict[str, str | None] = {
        "git.sha": git_sha,
        "git.short_sha": git_sha[:12] if git_sha else None,
        "git.branch": git_branch,
    }
    reader = _Reader(text, variables)
    try:
        data = reader.read()
    except _TooComplex as exc:
        raise SpecError([exc.problem]) from None
    except RecursionError:
        raise SpecError(
            [SpecProblem((), f"the document nests deeper than {MAX_DEPTH} levels")]
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or exc.context or "malformed YAML"
        raise SpecError([SpecProblem((), f"not valid YAML: {what}", line)]) from None
    except yaml.reader.ReaderError as exc:
        raise SpecError(
            [
                SpecProblem(
                    (),
                    f"not valid YAML: character {exc.character!r} is not allowed "
                    f"(position {exc.position})",
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError([SpecProblem((), f"not valid YAML: {exc}")]) from None
    if reader.problems:
        raise SpecError(reader.problems)
    if not isinstance(data, dict):
        raise SpecError(
            [
                SpecProblem(
                    (),
                    "the document must be a mapping with apiVersion, kind, metadata and spec",
                    reader.lines.get(()),
                )
            ]
        )
    if environment is not None and isinstance(data.get("metadata"), dict):
        data["metadata"]["environment"] = environment
    try:
        spec = ServiceSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_pydantic_problems(exc, reader.lines)) from None
    semantic = _semantic_problems(spec)
    if semantic:
        raise SpecError(
            [SpecProblem(path, msg, _line_for(reader.lines, path)) for path, msg in semantic]
        )
    spec = _with_defaults(spec)
    normalised = normalised_dict(spec)
    rendered = _render_text(text, variables)
    if environment is not None:
        rendered = _with_environment(
            rendered, reader.lines.get(("metadata", "environment")), environment
        )
    return LoadedSpec(spec=spec, rendered_yaml=rendered, digest=digest_of(normalised))


_ENVIRONMENT_VALUE: Final = re.compile(r"(\benvironment\s*:\s*)([^,}\s#]+)")


def _with_environment(text: str, line: int | None, environment: str) -> str:
    """The text with the value of ``metadata.environment`` (on ``line``) replaced."""
    if line is None:
        return text
    lines = text.split("\n")
    lines[line - 1] = _ENVIRONMENT_VALUE.sub(
        lambda m: m.group(1) + environment, lines[line - 1], count=1
    )
    return "\n".join(lines)


def _render_text(text: str, variables: Mapping[str, str | None]) -> str:
    """The submitted YAML with templates filled in, comments and layout kept."""

    def substitute(match: re.Match[str]) -> str:
        value = variables.get(match.group(1))
        return value if value is not None else match.group(0)

    return _TEMPLATE.sub(substitute, text)
