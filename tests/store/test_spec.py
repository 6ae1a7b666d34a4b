"""The Service Spec: loading with line-precise errors, defaults, digests, diffs, the JSON Schema.

Tests whose docstrings start with "Regression" pin down bugs found and fixed; each says what
went wrong.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from store.errors import SpecError, SpecProblem
from store.models.enums import ServiceType
from store.names import normalise_path
from store.spec import (
    API_VERSION,
    ChangeKind,
    LoadedSpec,
    ServiceSpec,
    SpecChange,
    diff_specs,
    digest_of,
    load_spec,
    normalised_dict,
    schema_export,
)
from store.spec.loader import MAX_DOCUMENT_BYTES
from store.spec.model import DEFAULT_PORT, Replicas

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "spec" / "service.schema.json"
SHA = "0123456789abcdef0123456789abcdef01234567"

# The example from the product spec (SOFTWARE_SPEC.md §6, "Service Spec (YAML)"), verbatim.
EXAMPLE = """\
apiVersion: enclii.dev/v1
kind: Service
metadata:
  project: solarpunk-saas
  environment: prod
  name: api
spec:
  runtime:
    image: ghcr.io/madfam/api:{{ git.sha }}
    cmd: ["node", "server.js"]
    ports: [3000]
    cpu: 500m
    memory: 512Mi
    replicas: { min: 2, max: 5 }
  health:
    readiness: { httpGet: /healthz, timeoutSeconds: 2 }
  routes:
    - host: api.enclii.dev
      path: /
  env:
    - name: NODE_ENV
      value: production
  envFrom:
    - secretRef: api-prod
  volumes:
    - name: uploads
      mountPath: /data
      size: 10Gi
      class: standard
  jobs:
    - name: nightly-report
      schedule: "0 2 * * *"
      args: ["node", "scripts/nightly.js"]
  autoscaling:
    hpa:
      cpuTargetUtilization: 70
"""

# The smallest valid document: everything else is a default.
HEADER = """\
apiVersion: enclii.dev/v1
kind: Service
metadata:
  project: shop
  environment: dev
  name: web
"""


def _line(text: str, fragment: str, occurrence: int = 1) -> int:
    """1-based number of the line holding the ``occurrence``-th match of ``fragment``."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if fragment in line]
    assert len(found) >= occurrence, f"{fragment!r} occurs {len(found)} times"
    return found[occurrence - 1]


def _problems(text: str, *, git_sha: str | None = SHA, git_branch: str | None = None) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(text, git_sha=git_sha, git_branch=git_branch)
    problems = caught.value.problems
    assert problems, "a SpecError must carry at least one problem"
    assert str(caught.value) == "; ".join(p.render() for p in problems)
    return [p.render() for p in problems]


def _only_problem(text: str, **kwargs: Any) -> str:
    problems = _problems(text, **kwargs)
    assert len(problems) == 1, problems
    return problems[0]


def _example(**replacements: str) -> str:
    text = EXAMPLE
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    return text


# --------------------------------------------------------------------------------------------
# The product spec's example


def test_example_loads_renders_the_sha_and_keeps_what_it_says() -> None:
    loaded = load_spec(EXAMPLE, git_sha=SHA)
    assert isinstance(loaded, LoadedSpec)
    spec = loaded.spec
    assert spec.api_version == API_VERSION == "enclii.dev/v1"
    assert spec.kind == "Service"
    assert (spec.metadata.project, spec.metadata.environment, spec.metadata.name) == (
        "solarpunk-saas",
        "prod",
        "api",
    )
    body = spec.spec
    assert body.type is ServiceType.API
    assert body.runtime.image == f"ghcr.io/madfam/api:{SHA}"
    assert body.runtime.build is None  # an image is given, so no build default is added
    assert body.runtime.cmd == ["node", "server.js"]
    assert body.runtime.ports == [3000]
    assert (body.runtime.cpu, body.runtime.memory) == ("500m", "512Mi")
    assert (body.runtime.replicas.min, body.runtime.replicas.max) == (2, 5)
    assert body.health.readiness is not None
    assert body.health.readiness.http_get is not None
    assert body.health.readiness.http_get.path == "/healthz"
    assert body.health.readiness.timeout_seconds == 2
    assert body.health.liveness is None and body.health.startup is None
    assert [(r.host, r.path, r.tls) for r in body.routes] == [("api.enclii.dev", "/", None)]
    assert [(e.name, e.value) for e in body.env] == [("NODE_ENV", "production")]
    assert [e.secret_ref for e in body.env_from] == ["api-prod"]
    assert [(v.name, v.mount_path, v.size, v.storage_class) for v in body.volumes] == [
        ("uploads", "/data", "10Gi", "standard")
    ]
    assert [(j.name, j.schedule, j.args, j.retries) for j in body.jobs] == [
        ("nightly-report", "0 2 * * *", ["node", "scripts/nightly.js"], 0)
    ]
    assert body.autoscaling.hpa is not None
    assert body.autoscaling.hpa.cpu_target_utilization == 70
    assert body.autoscaling.hpa.memory_target_utilization is None


def test_example_normalised_document_is_explicit_and_camel_cased() -> None:
    loaded = load_spec(EXAMPLE, git_sha=SHA)
    normalised = loaded.normalised()
    assert normalised == normalised_dict(loaded.spec)
    assert normalised == {
        "apiVersion": "enclii.dev/v1",
        "kind": "Service",
        "metadata": {"project": "solarpunk-saas", "environment": "prod", "name": "api"},
        "spec": {
            "type": "api",
            "runtime": {
                "image": f"ghcr.io/madfam/api:{SHA}",
                "cmd": ["node", "server.js"],
                "ports": [3000],
                "cpu": "500m",
                "memory": "512Mi",
                "replicas": {"min": 2, "max": 5},
            },
            "health": {
                "readiness": {
                    "httpGet": {"path": "/healthz"},
                    "timeoutSeconds": 2.0,
                    "periodSeconds": 10.0,
                    "initialDelaySeconds": 0.0,
                    "failureThreshold": 3,
                    "successThreshold": 1,
                }
            },
            "routes": [{"host": "api.enclii.dev", "path": "/"}],
            "env": [{"name": "NODE_ENV", "value": "production"}],
            "envFrom": [{"secretRef": "api-prod"}],
            "volumes": [
                {"name": "uploads", "mountPath": "/data", "size": "10Gi", "class": "standard"}
            ],
            "jobs": [
                {
                    "name": "nightly-report",
                    "schedule": "0 2 * * *",
                    "args": ["node", "scripts/nightly.js"],
                    "retries": 0,
                }
            ],
            "autoscaling": {
                "hpa": {"cpuTargetUtilization": 70, "scaleDownStabilizationSeconds": 300}
            },
            "deploy": {
                "strategy": "rolling",
                "progressDeadlineSeconds": 300,
                "rollbackWindowSeconds": 600,
            },
            "alerts": [],
        },
    }
    # The normalised form is plain JSON: no None values, no tuples, no enums.
    assert json.loads(json.dumps(normalised)) == normalised
    assert "null" not in json.dumps(normalised)


def test_example_without_a_sha_names_the_template_and_its_line() -> None:
    assert _only_problem(EXAMPLE, git_sha=None) == (
        "spec.runtime.image: {{ git.sha }} has no value here; apply from a git checkout or "
        "pass it explicitly (gitSha) (line 9)"
    )


def test_example_rendered_yaml_is_the_text_with_the_sha_filled_in() -> None:
    loaded = load_spec(EXAMPLE, git_sha=SHA)
    assert loaded.rendered_yaml == EXAMPLE.replace("{{ git.sha }}", SHA)
    assert "{{" not in loaded.rendered_yaml


def test_rendered_yaml_keeps_comments_quotes_and_layout() -> None:
    text = "# enclii.yaml for the shop\n" + EXAMPLE.replace(
        "    cpu: 500m\n", "    cpu: 500m   # half a core\n"
    ).replace("  env:\n", "\n  # what the process sees\n  env:\n")
    loaded = load_spec(text, git_sha=SHA)
    rendered = loaded.rendered_yaml
    assert rendered.startswith("# enclii.yaml for the shop\n")
    assert "    cpu: 500m   # half a core\n" in rendered
    assert "\n\n  # what the process sees\n  env:\n" in rendered
    assert '      schedule: "0 2 * * *"\n' in rendered
    assert "    replicas: { min: 2, max: 5 }\n" in rendered
    assert rendered == text.replace("{{ git.sha }}", SHA)
    # Comments change neither the model nor the digest.
    assert loaded.digest == load_spec(EXAMPLE, git_sha=SHA).digest


def test_templates_in_comments_are_not_required_but_are_rendered() -> None:
    text = "# built from {{ git.sha }}\n" + HEADER
    without = load_spec(text)
    assert without.rendered_yaml == text
    with_sha = load_spec(text, git_sha=SHA)
    assert with_sha.rendered_yaml == f"# built from {SHA}\n" + HEADER


def test_short_sha_branch_and_spacing_variants_render() -> None:
    text = HEADER + (
        "spec:\n"
        "  runtime:\n"
        "    image: 'registry.local/web:{{git.short_sha}}'\n"
        "  env:\n"
        "    - name: BRANCH\n"
        "      value: '{{   git.branch   }}'\n"
        "    - name: BOTH\n"
        "      value: '{{ git.branch }}@{{ git.sha }}'\n"
    )
    loaded = load_spec(text, git_sha=SHA, git_branch="main")
    assert loaded.spec.spec.runtime.image == f"registry.local/web:{SHA[:12]}"
    assert [(e.name, e.value) for e in loaded.spec.spec.env] == [
        ("BRANCH", "main"),
        ("BOTH", f"main@{SHA}"),
    ]
    assert f"registry.local/web:{SHA[:12]}" in loaded.rendered_yaml
    assert f"'main@{SHA}'" in loaded.rendered_yaml


def test_git_branch_without_a_value_is_a_problem() -> None:
    text = HEADER + "spec:\n  env:\n    - name: BRANCH\n      value: '{{ git.branch }}'\n"
    assert _only_problem(text, git_branch=None) == (
        "spec.env[0].value: {{ git.branch }} has no value here; apply from a git checkout or "
        f"pass it explicitly (gitSha) (line {_line(text, 'value:')})"
    )


def test_unknown_template_variable_lists_the_known_ones() -> None:
    text = _example(**{"{{ git.sha }}": "{{ git.sah }}"})
    assert _only_problem(text) == (
        "spec.runtime.image: unknown template variable 'git.sah' "
        "(known: git.branch, git.sha, git.short_sha) (line 9)"
    )


def test_every_template_problem_is_reported() -> None:
    text = HEADER + (
        "spec:\n"
        "  runtime:\n"
        "    image: 'x:{{ nope }}-{{ git.sha }}'\n"
        "  env:\n"
        "    - {name: A, value: '{{ also.nope }}'}\n"
    )
    problems = _problems(text, git_sha=None)
    assert sorted(problems) == sorted(
        [
            "spec.runtime.image: unknown template variable 'nope' "
            f"(known: git.branch, git.sha, git.short_sha) (line {_line(text, 'image:')})",
            "spec.runtime.image: {{ git.sha }} has no value here; apply from a git checkout or "
            f"pass it explicitly (gitSha) (line {_line(text, 'image:')})",
            "spec.env[0].value: unknown template variable 'also.nope' "
            f"(known: git.branch, git.sha, git.short_sha) (line {_line(text, 'name: A')})",
        ]
    )


# --------------------------------------------------------------------------------------------
# Defaults become explicit


def test_minimal_api_gets_port_replicas_build_and_resources() -> None:
    spec = load_spec(HEADER).spec
    runtime = spec.spec.runtime
    assert spec.spec.type is ServiceType.API
    assert runtime.ports == [DEFAULT_PORT] == [8080]
    assert (runtime.replicas.min, runtime.replicas.max) == (1, 1)
    assert runtime.build is not None
    assert (runtime.build.context, runtime.build.builder) == (".", "auto")
    assert runtime.image is None
    assert (runtime.cpu, runtime.memory) == ("500m", "512Mi")
    assert load_spec(HEADER).normalised()["spec"] == {
        "type": "api",
        "runtime": {
            "build": {"context": ".", "builder": "auto"},
            "ports": [8080],
            "cpu": "500m",
            "memory": "512Mi",
            "replicas": {"min": 1, "max": 1},
        },
        "health": {},
        "routes": [],
        "env": [],
        "envFrom": [],
        "volumes": [],
        "jobs": [],
        "autoscaling": {},
        "deploy": {
            "strategy": "rolling",
            "progressDeadlineSeconds": 300,
            "rollbackWindowSeconds": 600,
        },
        "alerts": [],
    }


def test_explicit_defaults_give_the_same_digest_as_implicit_ones() -> None:
    explicit = HEADER + (
        "spec:\n"
        "  type: api\n"
        "  runtime:\n"
        "    build: {context: ., builder: auto}\n"
        "    ports: [8080]\n"
        "    cpu: 500m\n"
        "    memory: 512Mi\n"
        "    replicas: {min: 1, max: 1}\n"
        "  routes: []\n"
        "  env: []\n"
    )
    assert load_spec(explicit).digest == load_spec(HEADER).digest
    assert load_spec(explicit).normalised() == load_spec(HEADER).normalised()


def test_worker_gets_no_default_port() -> None:
    spec = load_spec(HEADER + "spec:\n  type: worker\n").spec
    assert spec.spec.type is ServiceType.WORKER
    assert spec.spec.runtime.ports == []
    assert spec.spec.runtime.replicas.max == 1


def test_explicit_empty_ports_on_an_api_still_default() -> None:
    assert load_spec(HEADER + "spec:\n  runtime:\n    ports: []\n").spec.spec.runtime.ports == [
        8080
    ]


@pytest.mark.parametrize(
    ("replicas", "expected"),
    [
        ("{min: 3}", (3, 3)),
        ("{min: 0}", (0, 1)),
        ("{max: 4}", (1, 4)),
        ("{min: 2, max: 7}", (2, 7)),
    ],
)
def test_replicas_max_becomes_explicit(replicas: str, expected: tuple[int, int]) -> None:
    runtime = load_spec(HEADER + f"spec:\n  runtime:\n    replicas: {replicas}\n").spec.spec.runtime
    assert (runtime.replicas.min, runtime.replicas.max) == expected


def test_partial_build_is_completed() -> None:
    runtime = load_spec(
        HEADER + "spec:\n  runtime:\n    build: {builder: node}\n"
    ).spec.spec.runtime
    assert runtime.build is not None
    assert (runtime.build.context, runtime.build.builder) == (".", "node")


def test_replicas_upper_bound_property() -> None:
    assert Replicas(min=0).upper == 1
    assert Replicas(min=3).upper == 3
    assert Replicas(min=2, max=9).upper == 9


def test_probe_short_forms_expand() -> None:
    text = HEADER + (
        "spec:\n"
        "  runtime:\n"
        "    ports: [80, 5432]\n"
        "  health:\n"
        "    readiness: {httpGet: /ready}\n"
        "    liveness: {tcp: 5432}\n"
        "    startup: {tcp: true}\n"
    )
    health = load_spec(text).spec.spec.health
    assert health.readiness is not None and health.readiness.http_get is not None
    assert (health.readiness.http_get.path, health.readiness.http_get.port) == ("/ready", None)
    assert health.liveness is not None and health.liveness.tcp is not None
    assert health.liveness.tcp.port == 5432
    assert health.startup is not None and health.startup.tcp is not None
    assert health.startup.tcp.port is None
    assert load_spec(text).normalised()["spec"]["health"]["liveness"]["tcp"] == {"port": 5432}


def test_env_values_written_as_yaml_scalars_become_text() -> None:
    text = HEADER + (
        "spec:\n"
        "  env:\n"
        "    - {name: PORT, value: 3000}\n"
        "    - {name: DEBUG, value: true}\n"
        "    - {name: QUIET, value: false}\n"
        "    - {name: RATIO, value: 1.5}\n"
        "    - {name: EMPTY, value: ''}\n"
    )
    env = load_spec(text).spec.spec.env
    assert [(e.name, e.value) for e in env] == [
        ("PORT", "3000"),
        ("DEBUG", "true"),
        ("QUIET", "false"),
        ("RATIO", "1.5"),
        ("EMPTY", ""),
    ]


def test_route_hosts_are_lowercased_and_paths_normalised() -> None:
    text = HEADER + "spec:\n  routes:\n    - {host: API.Example.COM, path: /api/}\n"
    route = load_spec(text).spec.spec.routes[0]
    assert (route.host, route.path) == ("api.example.com", "/api")
    same = HEADER + "spec:\n  routes:\n    - {host: api.example.com, path: /api}\n"
    assert load_spec(text).digest == load_spec(same).digest


def test_cpu_written_as_a_number_is_accepted_as_text() -> None:
    runtime = load_spec(
        HEADER + "spec:\n  runtime:\n    cpu: 2\n    memory: 1024\n"
    ).spec.spec.runtime
    assert (runtime.cpu, runtime.memory) == ("2", "1024")
    assert load_spec(HEADER + "spec:\n  runtime:\n    cpu: 0.25\n").spec.spec.runtime.cpu == "0.25"


def test_job_with_zero_replicas_is_valid() -> None:
    text = HEADER + (
        "spec:\n"
        "  type: job\n"
        "  runtime:\n"
        "    replicas: {min: 0}\n"
        "  jobs:\n"
        "    - {name: once}\n"
        "    - {name: weekdays, schedule: '30 6 * * 1-5', retries: 3}\n"
        "    - {name: often, schedule: '*/5 * * * *'}\n"
    )
    spec = load_spec(text).spec
    assert spec.spec.type is ServiceType.JOB
    assert spec.spec.runtime.ports == []
    assert [(j.name, j.schedule, j.retries) for j in spec.spec.jobs] == [
        ("once", None, 0),
        ("weekdays", "30 6 * * 1-5", 3),
        ("often", "*/5 * * * *", 0),
    ]


def test_loaded_values_are_immutable() -> None:
    loaded = load_spec(EXAMPLE, git_sha=SHA)
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.digest = "sha256:0"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        loaded.spec.metadata.name = "other"  # type: ignore[misc]


def test_snake_case_model_construction_and_aliases() -> None:
    spec = ServiceSpec.model_validate(
        {
            "apiVersion": API_VERSION,
            "kind": "Service",
            "metadata": {"project": "p", "environment": "dev", "name": "n"},
        }
    )
    assert spec.api_version == API_VERSION
    dumped = spec.model_dump(by_alias=True)
    assert "apiVersion" in dumped and "envFrom" in dumped["spec"]


# --------------------------------------------------------------------------------------------
# Digest


def test_digest_is_sha256_of_the_canonical_normalised_document() -> None:
    loaded = load_spec(EXAMPLE, git_sha=SHA)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", loaded.digest)
    canonical = json.dumps(loaded.normalised(), sort_keys=True, separators=(",", ":"))
    assert loaded.digest == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert loaded.digest == digest_of(loaded.normalised())
    assert load_spec(EXAMPLE, git_sha=SHA).digest == loaded.digest  # stable


def test_digest_of_ignores_key_order() -> None:
    assert digest_of({"a": 1, "b": [1, 2]}) == digest_of({"b": [1, 2], "a": 1})
    assert digest_of({}) == "sha256:" + hashlib.sha256(b"{}").hexdigest()
    assert digest_of({"a": [1, 2]}) != digest_of({"a": [2, 1]})


def test_digest_is_independent_of_key_order_and_formatting() -> None:
    reordered = """\
# same service, different layout
kind: "Service"
spec:
  autoscaling: {hpa: {cpuTargetUtilization: 70}}
  jobs: [{args: [node, scripts/nightly.js], schedule: 0 2 * * *, name: nightly-report}]
  volumes:
  - {class: standard, size: 10Gi, mountPath: /data, name: uploads}
  envFrom: [{secretRef: 'api-prod'}]
  env: [{value: "production", name: NODE_ENV}]
  routes: [{path: /, host: api.enclii.dev}]
  health:
    readiness:
      timeoutSeconds: 2.0
      httpGet:
        path: /healthz
  runtime:
    replicas:
      max: 5
      min: 2
    memory: '512Mi'
    cpu: "500m"
    ports:
    - 3000
    cmd:
    - node
    - server.js
    image: "ghcr.io/madfam/api:{{git.sha}}"
metadata: {name: api, environment: prod, project: solarpunk-saas}
apiVersion: enclii.dev/v1
"""
    assert load_spec(reordered, git_sha=SHA).digest == load_spec(EXAMPLE, git_sha=SHA).digest


def test_digest_changes_with_what_runs() -> None:
    base = load_spec(EXAMPLE, git_sha=SHA).digest
    assert load_spec(EXAMPLE, git_sha="f" * 40).digest != base
    assert load_spec(_example(**{"max: 5": "max: 6"}), git_sha=SHA).digest != base
    assert load_spec(_example(**{"value: production": "value: prod"}), git_sha=SHA).digest != base


# --------------------------------------------------------------------------------------------
# Problems name the path and the line


def test_replicas_min_above_max_names_path_and_line() -> None:
    text = _example(**{"{ min: 2, max: 5 }": "{ min: 6, max: 5 }"})
    assert _only_problem(text) == "spec.runtime.replicas: min 6 is greater than max 5 (line 14)"


def test_replicas_out_of_range() -> None:
    text = HEADER + "spec:\n  runtime:\n    replicas:\n      min: 101\n      max: 0\n"
    assert sorted(_problems(text)) == [
        "spec.runtime.replicas.max: Input should be greater than or equal to 1 (line 11)",
        "spec.runtime.replicas.min: Input should be less than or equal to 100 (line 10)",
    ]


def test_unknown_field_suggests_the_close_match() -> None:
    text = _example(**{"  env:\n": "  envv:\n"})
    assert _only_problem(text) == "spec.envv: is not a known field; did you mean 'env'? (line 20)"


@pytest.mark.parametrize(
    ("snippet", "where", "suggestion"),
    [
        ("spec:\n  runtime:\n    replicsa: {min: 2}\n", "spec.runtime.replicsa", "replicas"),
        ("spec:\n  runtime:\n    replicas: {mni: 2}\n", "spec.runtime.replicas.mni", "min"),
        ("spec:\n  runtime:\n    bulid: {}\n", "spec.runtime.bulid", "build"),
        (
            "spec:\n  volumes:\n    - name: v\n      mountPath: /v\n      mountpth: /v\n",
            "spec.volumes[0].mountpth",
            "mountPath",
        ),
        (
            "spec:\n  health:\n    readiness: {httpGet: /, timeoutSecond: 2}\n",
            "spec.health.readiness.timeoutSecond",
            "timeoutSeconds",
        ),
        ("spec:\n  envfrom: []\n", "spec.envfrom", "envFrom"),
        ("spce: {}\n", "spce", "spec"),
        (
            "spec:\n  autoscaling: {hpa: {cpuTarget: 50}}\n",
            "spec.autoscaling.hpa.cpuTarget",
            "cpuTargetUtilization",
        ),
    ],
)
def test_unknown_fields_at_every_depth(snippet: str, where: str, suggestion: str) -> None:
    text = HEADER + snippet
    problems = _problems(text)
    unknown = [p for p in problems if p.startswith(f"{where}: is not a known field")]
    assert len(unknown) == 1, problems
    bad_key = where.rsplit(".", 1)[-1].split("]")[-1]
    line = _line(text, bad_key + ":")
    assert (
        unknown[0] == f"{where}: is not a known field; did you mean {suggestion!r}? (line {line})"
    )


def test_unknown_field_without_a_close_match_lists_the_known_ones() -> None:
    text = HEADER + "  zzz: 1\n"
    assert _only_problem(text) == (
        "metadata.zzz: is not a known field (known: project, environment, name) (line 7)"
    )
    text = HEADER + "spec:\n  autoscaling:\n    hpa: {zz: 50}\n"
    assert _only_problem(text) == (
        "spec.autoscaling.hpa.zz: is not a known field "
        "(known: cpuTargetUtilization, memoryTargetUtilization, "
        "scaleDownStabilizationSeconds) (line 9)"
    )


def test_duplicate_keys_name_the_second_occurrence() -> None:
    text = HEADER + "spec:\n  runtime:\n    cpu: 500m\n    memory: 1Gi\n    cpu: 1\n"
    assert _only_problem(text) == "spec.runtime.cpu: is set twice; keep one (line 11)"


def test_duplicate_top_level_key() -> None:
    text = HEADER + "metadata: {}\n"
    assert _only_problem(text) == "metadata: is set twice; keep one (line 7)"


def test_non_string_key() -> None:
    text = HEADER + "spec:\n  1: x\n"
    assert _only_problem(text) == "spec: key 1 must be a string (line 8)"


def test_missing_required_fields_point_at_the_enclosing_line() -> None:
    text = "apiVersion: enclii.dev/v1\nkind: Service\nmetadata:\n  project: shop\n"
    assert sorted(_problems(text)) == [
        "metadata.environment: is required (line 3)",
        "metadata.name: is required (line 3)",
    ]


def test_missing_top_level_fields_point_at_the_document_start() -> None:
    text = "\n\n# nothing useful\nspec: {}\n"
    assert sorted(_problems(text)) == [
        "apiVersion: is required (line 4)",
        "kind: is required (line 4)",
        "metadata: is required (line 4)",
    ]


def test_missing_field_in_a_list_item_points_at_the_item() -> None:
    text = HEADER + "spec:\n  volumes:\n    - name: a\n      mountPath: /a\n    - name: b\n"
    assert _only_problem(text) == "spec.volumes[1].mountPath: is required (line 11)"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "apiVersion: enclii.dev/v1",
            "apiVersion: enclii.dev/v2",
            "apiVersion: Input should be 'enclii.dev/v1', got 'enclii.dev/v2' (line 1)",
        ),
        (
            "apiVersion: enclii.dev/v1",
            "apiVersion: 1",
            "apiVersion: Input should be 'enclii.dev/v1', got 1 (line 1)",
        ),
        (
            "kind: Service",
            "kind: Deployment",
            "kind: Input should be 'Service', got 'Deployment' (line 2)",
        ),
    ],
)
def test_wrong_api_version_or_kind(old: str, new: str, expected: str) -> None:
    assert _only_problem(_example(**{old: new})) == expected


@pytest.mark.parametrize(
    ("environment", "ok"),
    [
        ("dev", True),
        ("stage", True),
        ("prod", True),
        ("preview-pr-12", True),
        ("qa", False),
        ("preview-", False),
        ("Preview-x", False),
        ("production", False),
    ],
)
def test_metadata_environment(environment: str, ok: bool) -> None:
    text = HEADER.replace("environment: dev", f"environment: {environment}")
    if ok:
        assert load_spec(text).spec.metadata.environment == environment
    else:
        assert _only_problem(text) == (
            f"metadata.environment: environment {environment!r} is not one of dev, stage, prod "
            "or preview-<name> (line 5)"
        )


def test_metadata_names_must_be_dns_labels() -> None:
    text = HEADER.replace("project: shop", "project: Shop_1").replace("name: web", "name: -web")
    assert sorted(_problems(text)) == [
        "metadata.name: name '-web' must be lowercase letters, digits and '-', starting and "
        "ending with a letter or digit (line 6)",
        "metadata.project: project 'Shop_1' must be lowercase letters, digits and '-', starting "
        "and ending with a letter or digit (line 4)",
    ]


@pytest.mark.parametrize(
    "schedule",
    ["0 2 * *", "61 * * * *", "@daily", "* * * * * *", "0 25 * * *", "every day", ""],
)
def test_bad_cron_schedules(schedule: str) -> None:
    text = HEADER + f"spec:\n  jobs:\n    - name: nightly\n      schedule: '{schedule}'\n"
    assert _only_problem(text) == (
        f"spec.jobs[0].schedule: {schedule!r} is not a 5-field cron schedule "
        f'(minute hour day month weekday), e.g. "0 2 * * *" (line 10)'
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cpu", "0", "CPU '0' must be greater than zero"),
        ("cpu", "0m", "CPU '0m' must be greater than zero"),
        ("cpu", "1Gi", "CPU '1Gi': use cores (2, 0.5) or millicores (500m)"),
        ("cpu", "0.0001", "CPU '0.0001' is finer than one millicore"),
        ("cpu", "lots", "'lots' is not a quantity (examples: 500m, 2, 512Mi, 10Gi)"),
        ("cpu", "-1", "'-1' is not a quantity (examples: 500m, 2, 512Mi, 10Gi)"),
        ("memory", "5Q", "size '5Q' has an unknown unit 'Q'; use Ki, Mi, Gi, Ti (or k, M, G, T)"),
        ("memory", "0Mi", "size '0Mi' must be greater than zero"),
        ("memory", "Mi", "'Mi' is not a quantity (examples: 500m, 2, 512Mi, 10Gi)"),
    ],
)
def test_bad_quantities(field: str, value: str, message: str) -> None:
    text = HEADER + f"spec:\n  runtime:\n    {field}: '{value}'\n"
    assert _only_problem(text) == f"spec.runtime.{field}: {message} (line 9)"


def test_bad_volume_size_and_relative_mount_path() -> None:
    text = HEADER + "spec:\n  volumes:\n    - name: data\n      mountPath: data\n      size: big\n"
    assert sorted(_problems(text)) == [
        "spec.volumes[0].mountPath: mountPath 'data' must be an absolute path (line 10)",
        "spec.volumes[0].size: 'big' is not a quantity (examples: 500m, 2, 512Mi, 10Gi) (line 11)",
    ]


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        (
            "{host: 'bad host', path: /}",
            "spec.routes[0].host: host 'bad host' is not a lowercase DNS name "
            "(like api.example.com or *.preview.example.com)",
        ),
        (
            "{host: 'api.example.com:443'}",
            "spec.routes[0].host: host 'api.example.com:443' is not a lowercase DNS name "
            "(like api.example.com or *.preview.example.com)",
        ),
        ("{host: a.com, path: api}", "spec.routes[0].path: path 'api' must start with '/'"),
        (
            "{host: a.com, path: /a//b}",
            "spec.routes[0].path: path '/a//b' must not contain '//' or '..' segments",
        ),
        (
            "{host: a.com, path: /a/../b}",
            "spec.routes[0].path: path '/a/../b' must not contain '//' or '..' segments",
        ),
        (
            "{host: a.com, path: '/a?b=1'}",
            "spec.routes[0].path: path '/a?b=1' must be a plain path prefix, without spaces, "
            "'?' or '#'",
        ),
    ],
)
def test_bad_route_hosts_and_paths(route: str, expected: str) -> None:
    text = HEADER + f"spec:\n  routes:\n    - {route}\n"
    assert _only_problem(text) == f"{expected} (line 9)"


def test_wildcard_route_host_is_valid() -> None:
    text = HEADER + "spec:\n  routes:\n    - {host: '*.preview.example.com', path: /x/}\n"
    route = load_spec(text).spec.spec.routes[0]
    assert (route.host, route.path) == ("*.preview.example.com", "/x")


def test_duplicate_routes_after_normalisation() -> None:
    text = HEADER + (
        "spec:\n"
        "  routes:\n"
        "    - {host: API.example.com, path: /api/}\n"
        "    - {host: api.example.com, path: /api}\n"
    )
    assert _only_problem(text) == "spec.routes: route api.example.com/api appears twice (line 8)"


def test_same_host_different_paths_is_fine() -> None:
    text = (
        HEADER + "spec:\n  routes:\n    - {host: a.com, path: /}\n    - {host: a.com, path: /api}\n"
    )
    assert [r.path for r in load_spec(text).spec.spec.routes] == ["/", "/api"]


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "env:\n    - {name: A, value: x}\n    - {name: A, value: y}\n",
            "spec.env: variable 'A' appears twice",
        ),
        (
            "volumes:\n    - {name: v, mountPath: /a}\n    - {name: v, mountPath: /b}\n",
            "spec.volumes: volume 'v' appears twice",
        ),
        (
            "volumes:\n    - {name: v, mountPath: /a}\n    - {name: w, mountPath: /a}\n",
            "spec.volumes: mountPath '/a' appears twice",
        ),
        (
            "jobs:\n    - {name: j}\n    - {name: j, schedule: '0 1 * * *'}\n",
            "spec.jobs: job 'j' appears twice",
        ),
    ],
)
def test_duplicate_names_in_lists(section: str, expected: str) -> None:
    text = HEADER + "spec:\n  " + section
    assert _only_problem(text) == f"{expected} (line 8)"


@pytest.mark.parametrize("name", ["1ABC", "A-B", "A B", ""])
def test_bad_env_var_names(name: str) -> None:
    text = HEADER + f"spec:\n  env:\n    - name: '{name}'\n      value: x\n"
    assert _only_problem(text) == (
        f"spec.env[0].name: {name!r} is not a variable name (letters, digits, '_') (line 9)"
    )


def test_env_value_must_be_given() -> None:
    text = HEADER + "spec:\n  env:\n    - name: A\n      value: null\n"
    assert (
        _only_problem(text)
        == "spec.env[0].value: Input should be a valid string, got None (line 10)"
    )


def test_image_and_build_together() -> None:
    text = HEADER + "spec:\n  runtime:\n    image: x\n    build: {}\n"
    assert _only_problem(text) == "spec.runtime: set either image or build, not both (line 8)"


def test_duplicate_ports() -> None:
    text = HEADER + "spec:\n  runtime:\n    ports: [80, 443, 80]\n"
    assert _only_problem(text) == "spec.runtime: ports [80, 443, 80] list a port twice (line 8)"


@pytest.mark.parametrize("port", ["0", "65536", "-1"])
def test_port_range(port: str) -> None:
    text = HEADER + f"spec:\n  runtime:\n    ports: [{port}]\n"
    problem = _only_problem(text)
    assert problem.startswith("spec.runtime.ports[0]: Input should be")
    assert problem.endswith("(line 9)")


@pytest.mark.parametrize("probe", ["{}", "{httpGet: /a, tcp: 8080}", "{timeoutSeconds: 3}"])
def test_probe_needs_exactly_one_kind(probe: str) -> None:
    text = HEADER + f"spec:\n  health:\n    liveness: {probe}\n"
    assert _only_problem(text) == (
        "spec.health.liveness: a probe needs exactly one of httpGet or tcp (line 9)"
    )


def test_probe_path_must_be_absolute() -> None:
    text = HEADER + "spec:\n  health:\n    readiness: {httpGet: healthz}\n"
    assert _only_problem(text) == (
        "spec.health.readiness.httpGet.path: path 'healthz' must start with '/' (line 9)"
    )


def test_probe_port_must_be_one_of_the_ports() -> None:
    text = HEADER + (
        "spec:\n"
        "  runtime:\n"
        "    ports: [80]\n"
        "  health:\n"
        "    readiness: {tcp: 81}\n"
        "    liveness:\n"
        "      httpGet: {path: /live, port: 80}\n"
        "    startup:\n"
        "      httpGet:\n"
        "        path: /start\n"
        "        port: 8080\n"
    )
    assert sorted(_problems(text)) == [
        "spec.health.readiness.tcp.port: port 81 is not one of the service's ports [80] "
        f"(line {_line(text, 'tcp: 81')})",
        "spec.health.startup.httpGet.port: port 8080 is not one of the service's ports [80] "
        f"(line {_line(text, 'port: 8080')})",
    ]


def test_probe_port_defaults_count_for_an_api() -> None:
    text = HEADER + "spec:\n  health:\n    readiness: {tcp: 8080}\n    liveness: {tcp: 9090}\n"
    assert _only_problem(text) == (
        "spec.health.liveness.tcp.port: port 9090 is not one of the service's ports [8080] (line 10)"
    )


def test_worker_probe_without_any_port() -> None:
    text = HEADER + "spec:\n  type: worker\n  health:\n    readiness: {httpGet: /x}\n"
    assert _only_problem(text) == (
        "spec.health.readiness.httpGet: names no port and the service has none (line 10)"
    )


def test_worker_with_routes() -> None:
    text = HEADER + "spec:\n  type: worker\n  routes:\n    - {host: a.com}\n"
    assert _only_problem(text) == "spec.routes: a worker has no routes; set type: api (line 9)"


def test_job_with_routes_and_default_replicas() -> None:
    text = HEADER + "spec:\n  type: job\n  routes:\n    - {host: a.com}\n"
    assert sorted(_problems(text)) == [
        "spec.routes: a job has no routes; set type: api (line 9)",
        # replicas.min was not written: the line is that of the nearest enclosing key, spec.
        "spec.runtime.replicas.min: a job runs only when triggered; set replicas.min to 0 (line 7)",
    ]


def test_job_with_explicit_replicas_points_at_min() -> None:
    text = HEADER + "spec:\n  type: job\n  runtime:\n    replicas:\n      min: 2\n      max: 3\n"
    assert _only_problem(text) == (
        "spec.runtime.replicas.min: a job runs only when triggered; set replicas.min to 0 (line 11)"
    )


def test_unknown_service_type() -> None:
    problem = _only_problem(HEADER + "spec:\n  type: daemon\n")
    assert problem.startswith("spec.type: Input should be 'api', 'worker' or 'job'")
    assert problem.endswith("(line 8)")


@pytest.mark.parametrize("replicas", ["{min: 3}", "{min: 2, max: 2}", "{min: 1}"])
def test_hpa_without_room(replicas: str) -> None:
    text = HEADER + (
        f"spec:\n  runtime:\n    replicas: {replicas}\n  autoscaling:\n    hpa: {{cpuTargetUtilization: 50}}\n"
    )
    runtime = yaml.safe_load(text)["spec"]["runtime"]["replicas"]
    low, high = runtime["min"], runtime.get("max", runtime["min"])
    assert _only_problem(text) == (
        f"spec.autoscaling.hpa: autoscaling needs room to scale: replicas.max ({high}) must be "
        f"greater than {max(low, 1)} (line 11)"
    )


def test_hpa_needs_a_target() -> None:
    text = (
        HEADER + "spec:\n  runtime:\n    replicas: {min: 1, max: 3}\n  autoscaling:\n    hpa: {}\n"
    )
    assert _only_problem(text) == (
        "spec.autoscaling.hpa: set cpuTargetUtilization or memoryTargetUtilization (percent) (line 11)"
    )


def test_hpa_with_room_is_valid() -> None:
    text = HEADER + (
        "spec:\n  runtime:\n    replicas: {min: 1, max: 3}\n"
        "  autoscaling:\n    hpa: {memoryTargetUtilization: 80}\n"
    )
    hpa = load_spec(text).spec.spec.autoscaling.hpa
    assert hpa is not None and hpa.memory_target_utilization == 80


def test_hpa_message_justifies_the_rejection() -> None:
    """With replicas {min: 0, max: 1} the numbers shown must justify the rejection (the rule
    compares max against max(min, 1), not against min)."""
    text = HEADER + (
        "spec:\n  runtime:\n    replicas: {min: 0, max: 1}\n"
        "  autoscaling:\n    hpa: {cpuTargetUtilization: 50}\n"
    )
    problem = _only_problem(text)
    match = re.search(r"replicas\.max \((\d+)\) must be greater than (\d+)", problem)
    assert match is not None, problem
    shown_max, bound = int(match.group(1)), int(match.group(2))
    assert shown_max <= bound, problem


def test_several_problems_are_all_reported() -> None:
    text = _example(
        **{
            "environment: prod": "environment: qa",
            "cpu: 500m": "cpu: 1Gi",
            "{ min: 2, max: 5 }": "{ min: 6, max: 5 }",
            "host: api.enclii.dev": "host: Api_Enclii",
            'schedule: "0 2 * * *"': 'schedule: "0 2 * *"',
            "      size: 10Gi": "      sise: 10Gi",
        }
    )
    problems = _problems(text)
    assert sorted(problems) == sorted(
        [
            "metadata.environment: environment 'qa' is not one of dev, stage, prod or "
            "preview-<name> (line 5)",
            "spec.runtime.cpu: CPU '1Gi': use cores (2, 0.5) or millicores (500m) (line 12)",
            "spec.runtime.replicas: min 6 is greater than max 5 (line 14)",
            "spec.routes[0].host: host 'api_enclii' is not a lowercase DNS name "
            "(like api.example.com or *.preview.example.com) (line 18)",
            "spec.volumes[0].sise: is not a known field; did you mean 'size'? (line 28)",
            "spec.jobs[0].schedule: '0 2 * *' is not a 5-field cron schedule "
            '(minute hour day month weekday), e.g. "0 2 * * *" (line 32)',
        ]
    )


def test_several_semantic_problems_are_all_reported() -> None:
    text = HEADER + (
        "spec:\n"
        "  type: worker\n"
        "  runtime:\n"
        "    replicas: {min: 2}\n"
        "  routes:\n"
        "    - {host: a.com}\n"
        "  health:\n"
        "    liveness: {tcp: true}\n"
        "  autoscaling:\n"
        "    hpa: {cpuTargetUtilization: 50}\n"
    )
    assert sorted(_problems(text)) == [
        "spec.autoscaling.hpa: autoscaling needs room to scale: replicas.max (2) must be "
        f"greater than 2 (line {_line(text, 'hpa:')})",
        "spec.health.liveness.tcp: names no port and the service has none "
        f"(line {_line(text, 'liveness:')})",
        f"spec.routes: a worker has no routes; set type: api (line {_line(text, 'routes:')})",
    ]


# --------------------------------------------------------------------------------------------
# Documents that are not a spec at all


@pytest.mark.parametrize(
    ("text", "line"),
    [("- a\n- b\n", 1), ("just text\n", 1), ("\n\n42\n", 3), ("~\n", 1)],
)
def test_non_mapping_document(text: str, line: int) -> None:
    assert _only_problem(text) == (
        f"the document must be a mapping with apiVersion, kind, metadata and spec (line {line})"
    )


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_document(text: str) -> None:
    assert _only_problem(text) == (
        "the document must be a mapping with apiVersion, kind, metadata and spec"
    )


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (HEADER + "spec:\n  runtime: [\n", 9),
        (HEADER + "spec:\n\truntime: {}\n", 8),
        (HEADER + "spec: {a: *missing}\n", 7),
        (HEADER + "spec:\n  env:\n  - name: A\n   value: b\n", 10),
        (HEADER + "---\nkind: Service\n", 7),
    ],
)
def test_invalid_yaml_names_the_line(text: str, line: int) -> None:
    problem = _only_problem(text)
    assert problem.startswith("not valid YAML: ")
    assert problem.endswith(f"(line {line})")


def test_unsafe_tags_are_refused() -> None:
    problem = _only_problem(HEADER + "spec:\n  type: !!python/name:os.system ''\n")
    assert problem.startswith("not valid YAML: could not determine a constructor")
    assert problem.endswith("(line 8)")


def test_oversize_document() -> None:
    padding = "#" * (MAX_DOCUMENT_BYTES - len(HEADER.encode()) - 1) + "\n"
    at_limit = HEADER + padding
    assert len(at_limit.encode()) == MAX_DOCUMENT_BYTES
    assert load_spec(at_limit).spec.metadata.name == "web"
    assert _only_problem(at_limit + "#") == "the document is larger than 256 KiB"


def test_oversize_counts_bytes_not_characters() -> None:
    text = HEADER + "# " + "é" * (MAX_DOCUMENT_BYTES // 2) + "\n"
    assert len(text) < MAX_DOCUMENT_BYTES < len(text.encode())
    assert _only_problem(text) == "the document is larger than 256 KiB"


def test_byte_order_mark_is_accepted() -> None:
    assert load_spec("\ufeff" + HEADER).digest == load_spec(HEADER).digest


def test_spec_problem_rendering() -> None:
    assert (
        SpecProblem(("spec", "routes", 0, "host"), "bad", 3).render()
        == "spec.routes[0].host: bad (line 3)"
    )
    assert SpecProblem((), "whole thing", None).render() == "whole thing"
    assert SpecProblem(("a",), "x").path == "a"
    error = SpecError([SpecProblem(("a",), "x", 1), SpecProblem(("b", 2), "y")])
    assert str(error) == "a: x (line 1); b[2]: y"


# --------------------------------------------------------------------------------------------
# Robustness (bugs found while writing these tests)


@pytest.mark.parametrize("character", ["\x00", "\x07", "\x1f", "\x7f"])
def test_control_characters_are_a_spec_error(character: str) -> None:
    """Regression (store/spec/loader.py, load_spec): yaml.SafeLoader(text) runs inside
    _Reader.__init__, outside the try that turns YAML errors into SpecError, so a document
    holding a control character raises yaml.reader.ReaderError instead of SpecError."""
    text = HEADER + f"spec:\n  env:\n    - {{name: A, value: 'a{character}b'}}\n"
    problem = _only_problem(text)
    assert problem.startswith("not valid YAML")


def test_lone_surrogate_is_a_spec_error() -> None:
    """Regression (store/spec/loader.py, load_spec): the size check runs text.encode(), which raises
    UnicodeEncodeError for a lone surrogate (json.loads('"\\ud800"') yields one, so an API
    request can send it). Expected a SpecError."""
    _only_problem(HEADER + "spec:\n  env:\n    - {name: A, value: '\ud800'}\n")


@pytest.mark.parametrize(
    "text", ["&a [*a]\n", "spec: &s {runtime: *s}\n", HEADER + "spec: &s [*s]\n"]
)
def test_recursive_alias_is_a_spec_error(text: str) -> None:
    """Regression (store/spec/loader.py, _Reader._value): a self-referencing YAML alias makes the
    reader recurse forever, raising RecursionError instead of a SpecError."""
    _only_problem(text)


@pytest.mark.parametrize("shape", ["sequences", "mappings"])
def test_deep_nesting_is_a_spec_error(shape: str) -> None:
    """Regression (store/spec/loader.py): a 2 KB document nested 1000 levels deep (well under the
    256 KiB limit) raises RecursionError from the recursive YAML composer and reader instead
    of a SpecError."""
    depth = 1000
    nested = {
        "sequences": "[" * depth + "]" * depth,
        "mappings": "{a: " * depth + "1" + "}" * depth,
    }
    text = nested[shape]
    assert len(text.encode()) < MAX_DOCUMENT_BYTES
    _problems(text)


def test_alias_expansion_is_bounded() -> None:
    """Regression (store/spec/loader.py, _Reader): aliases are expanded without limit ("billion
    laughs"): this 0.3 KB document expands to 100,000 strings and its SpecError text is over
    500 KB; two more levels would take minutes and gigabytes. Expected: refused with a report
    no larger than the largest document accepted."""
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcd", "bcde", strict=True):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    text = (
        HEADER
        + "x:\n"
        + "".join(f"  {level}\n" for level in levels)
        + "spec:\n  runtime:\n    cmd: [*e]\n"
    )
    assert len(text) < 1024
    with pytest.raises(SpecError) as caught:
        load_spec(text)
    assert len(str(caught.value)) < MAX_DOCUMENT_BYTES


@pytest.mark.parametrize(
    ("snippet", "where"),
    [
        ('  name: "web\\n"\n', "metadata.name"),
        ('spec:\n  env: [{name: "PORT\\n", value: "1"}]\n', "spec.env[0].name"),
        ('spec:\n  routes: [{host: "a.example.com\\n"}]\n', "spec.routes[0].host"),
        ('spec:\n  volumes: [{name: "data\\n", mountPath: /data}]\n', "spec.volumes[0].name"),
    ],
)
def test_names_with_a_trailing_newline_are_refused(snippet: str, where: str) -> None:
    """Regression (store/names.py DNS_LABEL, HOSTNAME, ENV_VAR): the patterns end in ``$`` and are
    used with ``re.match``; ``$`` also matches before a final newline, so a service named
    "web\\n", a variable "PORT\\n" or a host "a.example.com\\n" is accepted and would end up
    in hostnames, process names and environments. Expected a problem at that path."""
    text = (
        HEADER.replace("  name: web\n", "") + snippet if "metadata" in where else HEADER + snippet
    )
    problems = _problems(text)
    assert any(p.startswith(f"{where}: ") for p in problems), problems


# --------------------------------------------------------------------------------------------
# Properties


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
)
yamlish = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.one_of(st.text(max_size=10), st.integers()), children, max_size=5),
    ),
    max_leaves=30,
)
SPEC_WORDS = [
    *("apiVersion", "kind", "metadata", "spec", "project", "environment", "name", "type"),
    *("runtime", "image", "build", "context", "builder", "cmd", "ports", "cpu", "memory"),
    *("replicas", "min", "max", "health", "readiness", "liveness", "startup", "httpGet", "tcp"),
    *("path", "port", "timeoutSeconds", "routes", "host", "tls", "env", "value", "envFrom"),
    *("secretRef", "volumes", "mountPath", "size", "class", "jobs", "schedule", "args"),
    *("retries", "autoscaling", "hpa", "cpuTargetUtilization"),
]
spec_scalars = st.one_of(
    scalars,
    st.sampled_from(
        [
            "enclii.dev/v1",
            "Service",
            "api",
            "worker",
            "job",
            "dev",
            "prod",
            "/",
            "/x",
            "a.com",
            "500m",
            "1Gi",
            "0 2 * * *",
            "{{ git.sha }}",
            "{{ nope }}",
            "x",
        ]
    ),
    st.integers(0, 70000),
)
spec_like = st.recursive(
    spec_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(SPEC_WORDS), children, max_size=6),
    ),
    max_leaves=40,
)
near_valid = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from([API_VERSION, "v1"]),
        "kind": st.just("Service"),
        "metadata": st.just({"project": "p", "environment": "dev", "name": "a"}),
    },
    optional={"spec": spec_like},
)


def _assert_spec_error_or_loaded(text: str, git_sha: str | None = SHA) -> None:
    try:
        loaded = load_spec(text, git_sha=git_sha)
    except SpecError as exc:
        assert exc.problems
        for problem in exc.problems:
            rendered = problem.render()
            assert isinstance(rendered, str) and rendered.strip()
            assert problem.line is None or problem.line >= 1
    else:
        assert loaded.digest == digest_of(loaded.normalised())


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_arbitrary_text_only_ever_raises_spec_error(text: str) -> None:
    _assert_spec_error_or_loaded(text)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="{}[]:-,&*!|>'\"#%@ \n\tak0."))
def test_yaml_punctuation_only_ever_raises_spec_error(text: str) -> None:
    _assert_spec_error_or_loaded(text)


@settings(max_examples=150, deadline=None)
@given(yamlish)
def test_arbitrary_yaml_structures_only_ever_raise_spec_error(data: Any) -> None:
    _assert_spec_error_or_loaded(yaml.safe_dump(data))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(spec_like, near_valid), st.sampled_from([SHA, None]))
def test_spec_shaped_structures_only_ever_raise_spec_error(data: Any, sha: str | None) -> None:
    _assert_spec_error_or_loaded(yaml.safe_dump(data), git_sha=sha)


LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="{}"), max_size=12)
SCHEDULES = ["0 2 * * *", "*/5 * * * *", "30 6 * * 1-5", "0 0 1 * *", "15 14 1 * *"]
BUILDERS = ["auto", "python", "node", "procfile", "cmd"]


def _probe(ports: list[int]) -> st.SearchStrategy[dict[str, Any]]:
    port = st.sampled_from(ports)
    kind = st.one_of(
        st.builds(lambda p: {"httpGet": p}, st.from_regex(r"/[a-z]{0,6}", fullmatch=True)),
        st.builds(
            lambda p, extra: {"httpGet": {"path": p, **extra}},
            st.from_regex(r"/[a-z]{0,6}", fullmatch=True),
            st.fixed_dictionaries({}, optional={"port": port}),
        ),
        st.builds(lambda p: {"tcp": p}, port),
        st.builds(lambda extra: {"tcp": extra}, st.fixed_dictionaries({}, optional={"port": port})),
    )
    timings = st.fixed_dictionaries(
        {},
        optional={
            "timeoutSeconds": st.one_of(st.integers(1, 60), st.floats(0.01, 60)),
            "periodSeconds": st.integers(1, 300),
            "initialDelaySeconds": st.floats(0, 3600),
            "failureThreshold": st.integers(1, 100),
            "successThreshold": st.integers(1, 100),
        },
    )
    return st.builds(lambda k, t: {**k, **t}, kind, timings)


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    service_type = draw(st.sampled_from(["api", "worker", "job"]))
    environment = draw(
        st.one_of(st.sampled_from(["dev", "stage", "prod"]), LABEL.map(lambda s: f"preview-{s}"))
    )
    body: dict[str, Any] = {}
    if service_type != "api" or draw(st.booleans()):
        body["type"] = service_type

    runtime: dict[str, Any] = {}
    source = draw(st.sampled_from(["image", "build", "neither"]))
    if source == "image":
        runtime["image"] = draw(st.builds(lambda n, t: f"registry.local/{n}:{t}", LABEL, LABEL))
    elif source == "build":
        runtime["build"] = draw(
            st.fixed_dictionaries(
                {}, optional={"context": TEXT, "builder": st.sampled_from(BUILDERS)}
            )
        )
    if draw(st.booleans()):
        runtime["cmd"] = draw(st.lists(TEXT, min_size=1, max_size=3))
    ports = draw(st.lists(st.integers(1, 65535), unique=True, max_size=3))
    write_ports = draw(st.booleans())
    if ports or write_ports:
        runtime["ports"] = ports
    if draw(st.booleans()):
        runtime["cpu"] = draw(
            st.one_of(
                st.integers(1, 64000).map(lambda n: f"{n}m"),
                st.integers(1, 64),
                st.sampled_from(["0.5", "1.5", "2", "0.001"]),
            )
        )
    if draw(st.booleans()):
        runtime["memory"] = draw(
            st.builds(
                lambda n, u: f"{n}{u}",
                st.integers(1, 4096),
                st.sampled_from(["", "Ki", "Mi", "Gi", "Ti", "k", "M", "G"]),
            )
        )
    want_hpa = draw(st.booleans())
    low = 0 if service_type == "job" else draw(st.integers(0, 99 if want_hpa else 100))
    floor = max(low, 1)
    if want_hpa:
        high: int | None = draw(st.integers(floor + 1, 100))
    else:
        high = draw(st.one_of(st.none(), st.integers(floor, 100)))
    if service_type == "job" or want_hpa or high is not None or low != 1 or draw(st.booleans()):
        replicas: dict[str, Any] = {"min": low}
        if high is not None:
            replicas["max"] = high
        runtime["replicas"] = replicas
    write_runtime = draw(st.booleans())
    if runtime or write_runtime:
        body["runtime"] = runtime

    effective = ports or ([DEFAULT_PORT] if service_type == "api" else [])
    if effective:
        health = draw(
            st.fixed_dictionaries(
                {},
                optional={k: _probe(effective) for k in ("readiness", "liveness", "startup")},
            )
        )
        if health:
            body["health"] = health

    if service_type == "api" and draw(st.booleans()):
        host = st.builds(
            lambda prefix, a, b, upper: (
                (prefix + f"{a}.{b}").upper() if upper else prefix + f"{a}.{b}"
            ),
            st.sampled_from(["", "*."]),
            LABEL,
            LABEL,
            st.booleans(),
        )
        path = st.builds(
            lambda segments, slash: "/" + "/".join(segments) + ("/" if slash and segments else ""),
            st.lists(st.from_regex(r"[a-z0-9_-]{1,6}", fullmatch=True), max_size=3),
            st.booleans(),
        )
        body["routes"] = draw(
            st.lists(
                st.fixed_dictionaries({"host": host}, optional={"path": path, "tls": LABEL}),
                max_size=3,
                unique_by=lambda r: (r["host"].lower(), normalise_path(r.get("path", "/"))),
            )
        )
    if draw(st.booleans()):
        body["env"] = draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "name": st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
                        "value": st.one_of(TEXT, st.integers(), st.booleans(), st.floats()),
                    }
                ),
                max_size=4,
                unique_by=lambda e: e["name"],
            )
        )
    if draw(st.booleans()):
        body["envFrom"] = draw(st.lists(st.builds(lambda s: {"secretRef": s}, LABEL), max_size=2))
    if draw(st.booleans()):
        body["volumes"] = draw(
            st.lists(
                st.fixed_dictionaries(
                    {"name": LABEL, "mountPath": LABEL.map(lambda s: f"/{s}")},
                    optional={
                        "size": st.builds(lambda n: f"{n}Gi", st.integers(1, 500)),
                        "class": st.sampled_from(["standard", "fast"]),
                    },
                ),
                max_size=3,
                unique_by=(lambda v: v["name"], lambda v: v["mountPath"]),
            )
        )
    if draw(st.booleans()):
        body["jobs"] = draw(
            st.lists(
                st.fixed_dictionaries(
                    {"name": LABEL},
                    optional={
                        "schedule": st.sampled_from(SCHEDULES),
                        "args": st.lists(TEXT, max_size=3),
                        "retries": st.integers(0, 10),
                    },
                ),
                max_size=3,
                unique_by=lambda j: j["name"],
            )
        )
    if want_hpa:
        body["autoscaling"] = {
            "hpa": draw(
                st.fixed_dictionaries(
                    {"cpuTargetUtilization": st.integers(1, 100)},
                    optional={"memoryTargetUtilization": st.integers(1, 100)},
                )
            )
        }
    document: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "Service",
        "metadata": {"project": draw(LABEL), "environment": environment, "name": draw(LABEL)},
    }
    write_spec = draw(st.booleans())
    if body or write_spec:
        document["spec"] = body
    return document


def _reverse_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reverse_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reverse_keys(v) for v in value]
    return value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_documents())
def test_valid_documents_load_and_round_trip(document: dict[str, Any]) -> None:
    loaded = load_spec(yaml.safe_dump(document, sort_keys=False))
    normalised = loaded.normalised()

    # Defaults are explicit.
    runtime = normalised["spec"]["runtime"]
    assert isinstance(runtime["replicas"]["max"], int)
    assert runtime["replicas"]["max"] >= max(runtime["replicas"]["min"], 1)
    assert ("image" in runtime) != ("build" in runtime)
    if normalised["spec"]["type"] == "api":
        assert runtime["ports"]

    # load -> normalised -> YAML -> load is a fixed point.
    again = load_spec(yaml.safe_dump(normalised))
    assert again.digest == loaded.digest
    assert again.normalised() == normalised

    # Neither key order nor layout changes the digest.
    flow = yaml.safe_dump(
        _reverse_keys(document), sort_keys=False, default_flow_style=True, width=40
    )
    assert load_spec(flow).digest == loaded.digest

    # What the loader produces, editors accept.
    assert list(_validator().iter_errors(normalised)) == []


# --------------------------------------------------------------------------------------------
# diff_specs


def _example_normalised() -> dict[str, Any]:
    return load_spec(EXAMPLE, git_sha=SHA).normalised()


def test_diff_of_equal_specs_is_empty() -> None:
    assert diff_specs(_example_normalised(), _example_normalised()) == []


def test_diff_from_nothing_adds_everything() -> None:
    after = _example_normalised()
    changes = diff_specs(None, after)
    assert changes == [
        SpecChange("apiVersion", ChangeKind.ADDED, None, "enclii.dev/v1"),
        SpecChange("kind", ChangeKind.ADDED, None, "Service"),
        SpecChange("metadata", ChangeKind.ADDED, None, after["metadata"]),
        SpecChange("spec", ChangeKind.ADDED, None, after["spec"]),
    ]
    assert changes[1].render() == "+ kind: 'Service'"


def test_adding_one_env_var_is_one_addition() -> None:
    before = _example_normalised()
    after = copy.deepcopy(before)
    after["spec"]["env"].insert(0, {"name": "LOG_LEVEL", "value": "debug"})
    assert diff_specs(before, after) == [
        SpecChange(
            "spec.env[name=LOG_LEVEL]",
            ChangeKind.ADDED,
            None,
            {"name": "LOG_LEVEL", "value": "debug"},
        )
    ]


def test_removing_a_named_item_is_one_removal() -> None:
    before = _example_normalised()
    before["spec"]["env"].append({"name": "EXTRA", "value": "1"})
    after = _example_normalised()
    changes = diff_specs(before, after)
    assert changes == [
        SpecChange(
            "spec.env[name=EXTRA]", ChangeKind.REMOVED, {"name": "EXTRA", "value": "1"}, None
        )
    ]
    assert changes[0].render() == "- spec.env[name=EXTRA]: {'name': 'EXTRA', 'value': '1'}"


def test_reordering_a_named_list_changes_nothing() -> None:
    before = _example_normalised()
    before["spec"]["env"] = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    after = copy.deepcopy(before)
    after["spec"]["env"].reverse()
    assert diff_specs(before, after) == []


def test_changing_a_named_item_reports_only_the_changed_field() -> None:
    before = _example_normalised()
    after = copy.deepcopy(before)
    after["spec"]["volumes"][0]["size"] = "20Gi"
    changes = diff_specs(before, after)
    assert len(changes) == 1
    assert (changes[0].kind, changes[0].before, changes[0].after) == (
        ChangeKind.CHANGED,
        "10Gi",
        "20Gi",
    )
    assert "uploads" in changes[0].path and changes[0].path.endswith("size")


def test_changed_field_of_named_item_uses_the_bracket_path() -> None:
    """Additions, removals and changes inside a named item all spell the item the same way
    (an earlier diff.py rendered changes as "spec.env.name=NODE_ENV.value")."""
    before = _example_normalised()
    after = copy.deepcopy(before)
    after["spec"]["env"][0]["value"] = "development"
    changes = diff_specs(before, after)
    assert [c.path for c in changes] == ["spec.env[name=NODE_ENV].value"]


def test_changed_and_removed_keys() -> None:
    before = _example_normalised()
    after = copy.deepcopy(before)
    after["spec"]["runtime"]["replicas"]["max"] = 8
    del after["spec"]["runtime"]["image"]
    after["spec"]["runtime"]["build"] = {"context": ".", "builder": "node"}
    del after["spec"]["health"]["readiness"]
    changes = diff_specs(before, after)
    assert changes == [
        SpecChange(
            "spec.health.readiness", ChangeKind.REMOVED, before["spec"]["health"]["readiness"], None
        ),
        SpecChange(
            "spec.runtime.build", ChangeKind.ADDED, None, {"context": ".", "builder": "node"}
        ),
        SpecChange("spec.runtime.image", ChangeKind.REMOVED, f"ghcr.io/madfam/api:{SHA}", None),
        SpecChange("spec.runtime.replicas.max", ChangeKind.CHANGED, 5, 8),
    ]
    assert changes[3].render() == "~ spec.runtime.replicas.max: 5 → 8"


def test_unnamed_lists_change_as_a_whole() -> None:
    before = _example_normalised()
    after = copy.deepcopy(before)
    after["spec"]["runtime"]["ports"] = [3000, 9090]
    after["spec"]["runtime"]["cmd"] = ["node", "main.js"]
    assert diff_specs(before, after) == [
        SpecChange(
            "spec.runtime.cmd", ChangeKind.CHANGED, ["node", "server.js"], ["node", "main.js"]
        ),
        SpecChange("spec.runtime.ports", ChangeKind.CHANGED, [3000], [3000, 9090]),
    ]


def test_duplicate_names_fall_back_to_whole_list() -> None:
    before = {"items": [{"name": "a", "v": 1}, {"name": "a", "v": 2}]}
    after = {"items": [{"name": "a", "v": 1}]}
    assert diff_specs(before, after) == [
        SpecChange("items", ChangeKind.CHANGED, before["items"], after["items"])
    ]


def test_type_change_is_a_change() -> None:
    assert diff_specs({"a": {"b": 1}}, {"a": [1]}) == [
        SpecChange("a", ChangeKind.CHANGED, {"b": 1}, [1])
    ]


def test_first_item_of_an_empty_named_list_is_an_addition() -> None:
    """Normalised specs always hold "env": [], so the first variable must still be one ADDED
    change (an earlier diff.py reported "~ spec.env: [] → [{...}]")."""
    before = load_spec(HEADER).normalised()
    after = load_spec(HEADER + "spec:\n  env: [{name: A, value: b}]\n").normalised()
    assert diff_specs(before, after) == [
        SpecChange("spec.env[name=A]", ChangeKind.ADDED, None, {"name": "A", "value": "b"})
    ]
    assert diff_specs(after, before) == [
        SpecChange("spec.env[name=A]", ChangeKind.REMOVED, {"name": "A", "value": "b"}, None)
    ]


# --------------------------------------------------------------------------------------------
# The JSON Schema


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return schema


def _validator() -> Any:
    return jsonschema.Draft202012Validator(_schema())


def test_committed_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text() == schema_export.render(), (
        "spec/service.schema.json is stale; regenerate it with `python -m store.spec.schema_export`"
    )


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://enclii.dev/schemas/service.v1.json"
    assert schema["title"] == "Enclii Service Spec"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"apiVersion", "kind", "metadata"}


def test_schema_export_main_writes_the_rendered_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "nested" / "schema.json"
    assert schema_export.main([str(target)]) == 0
    assert target.read_text() == schema_export.render()
    assert str(target) in capsys.readouterr().out
    assert schema_export.DEFAULT_OUTPUT == SCHEMA_FILE


def test_example_validates_against_the_schema() -> None:
    document = yaml.safe_load(EXAMPLE)
    assert list(_validator().iter_errors(document)) == []
    assert list(_validator().iter_errors(load_spec(EXAMPLE, git_sha=SHA).normalised())) == []


@pytest.mark.parametrize(
    ("mutate", "unexpected"),
    [
        (lambda d: d["spec"].__setitem__("envv", []), "envv"),
        (lambda d: d["spec"]["runtime"].__setitem__("replicsa", {"min": 1}), "replicsa"),
        (lambda d: d["metadata"].__setitem__("team", "x"), "team"),
        (lambda d: d.__setitem__("status", {}), "status"),
    ],
)
def test_unknown_field_fails_the_schema(mutate: Any, unexpected: str) -> None:
    document = yaml.safe_load(EXAMPLE)
    mutate(document)
    errors = list(_validator().iter_errors(document))
    assert len(errors) == 1
    assert f"'{unexpected}' was unexpected" in errors[0].message


@pytest.mark.parametrize(
    ("readiness", "valid"),
    [
        ({"httpGet": "/healthz"}, True),
        ({"httpGet": {"path": "/healthz", "port": 3000}}, True),
        ({"tcp": 5432}, True),
        ({"tcp": {"port": 5432}}, True),
        ({"httpGet": "healthz"}, False),
        ({"tcp": 0}, False),
        ({"tcp": 70000}, False),
        ({"tcp": "5432"}, False),
    ],
)
def test_probe_short_forms_in_the_schema(readiness: dict[str, Any], valid: bool) -> None:
    document = yaml.safe_load(EXAMPLE)
    document["spec"]["health"]["readiness"] = readiness
    assert (list(_validator().iter_errors(document)) == []) is valid


def test_schema_rejects_wrong_api_version_and_kind() -> None:
    document = yaml.safe_load(EXAMPLE)
    document["apiVersion"] = "enclii.dev/v2"
    document["kind"] = "Deployment"
    assert len(list(_validator().iter_errors(document))) == 2


@pytest.mark.parametrize(
    "snippet",
    [
        "spec:\n  runtime:\n    cpu: 1\n",
        "spec:\n  runtime:\n    memory: 1073741824\n",
        "spec:\n  env: [{name: PORT, value: 3000}]\n",
        "spec:\n  env: [{name: DEBUG, value: true}]\n",
        "spec:\n  health:\n    readiness: {tcp: true}\n",
    ],
)
def test_schema_accepts_what_the_loader_accepts(snippet: str) -> None:
    """Numbers for cpu/memory/env values and `tcp: true` are accepted by the loader, so the
    published schema must not flag them in editors."""
    text = HEADER + snippet
    load_spec(text)  # accepted
    assert [e.message for e in _validator().iter_errors(yaml.safe_load(text))] == []


@pytest.mark.parametrize(
    "snippet",
    [
        "spec:\n  volumes: [{name: v, mount_path: /v}]\n",
        "spec:\n  volumes: [{name: v, mountPath: /v, storage_class: fast}]\n",
        "spec:\n  env_from: [{secret_ref: db}]\n",
    ],
)
def test_snake_case_keys_are_refused_by_loader_and_schema(snippet: str) -> None:
    text = HEADER + snippet
    with pytest.raises(SpecError) as caught:
        load_spec(text)
    assert "is not a known field" in str(caught.value)
    assert list(_validator().iter_errors(yaml.safe_load(text))) != []


ENV_BLOCK = """apiVersion: enclii.dev/v1
kind: Service
metadata:
  project: shop
  environment: stage   # the default
  name: api
spec:
  runtime: {image: "registry.local/api:1"}
"""


def test_an_environment_given_replaces_metadata_environment_in_spec_and_text() -> None:
    stage = load_spec(ENV_BLOCK)
    prod = load_spec(ENV_BLOCK, environment="prod")
    assert prod.spec.metadata.environment == "prod"
    assert "  environment: prod   # the default\n" in prod.rendered_yaml
    assert prod.rendered_yaml.replace("prod", "stage") == stage.rendered_yaml
    assert prod.digest != stage.digest
    flow = load_spec(
        "apiVersion: enclii.dev/v1\nkind: Service\n"
        "metadata: {project: shop, environment: stage, name: api}\n"
        "spec: {runtime: {image: 'registry.local/api:1'}}\n",
        environment="prod",
    )
    assert "metadata: {project: shop, environment: prod, name: api}" in flow.rendered_yaml


def test_an_environment_given_is_validated_like_the_document() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(ENV_BLOCK, environment="Not An Env")
    [problem] = caught.value.problems
    assert problem.segments == ("metadata", "environment")
    assert problem.line == 5
