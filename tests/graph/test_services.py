"""applyService and deleteService over GraphQL: versions, diffs, spec-owned routes, volumes
and jobs, precise errors that change nothing, templating, and deletion."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from resolvers.context import Context
from store.db import Store
from store.models import (
    AuditEvent,
    Base,
    Event,
    Job,
    Route,
    Service,
    ServiceSpecVersion,
    Volume,
)
from tests.factories import make_environment, make_project, service_yaml
from tests.helpers import Api

APPLY = """
mutation($input: ApplyServiceInput!) {
  applyService(input: $input) {
    __typename
    ... on ApplyServiceSuccess {
      created
      unchanged
      changes { path kind before after }
      service { id name type generation }
      version { id version digest gitSha specYaml spec }
    }
    ... on ValidationError { problems { path message line } }
    ... on ConflictError { existingId existing { __typename id } }
    ... on Error { message code path }
  }
}
"""

DELETE = """
mutation($id: ID!) {
  deleteService(input: {id: $id}) {
    __typename
    ... on DeleteServiceSuccess { deletedServiceId }
    ... on Error { message code path }
  }
}
"""

SERVICE_RESOURCES = """
query($id: ID!) {
  service(id: $id) {
    id
    generation
    routes { totalCount nodes { id host path source service { id } } }
    volumes { totalCount nodes { id name mountPath size service { id } } }
    jobs { totalCount nodes { id name schedule onDemand args retries service { id } } }
  }
}
"""

VOLUMES_AND_JOBS = (
    "  volumes:\n"
    "    - name: data\n"
    "      mountPath: /var/data\n"
    "      size: 10Gi\n"
    "    - name: cache\n"
    "      mountPath: /var/cache\n"
    "  jobs:\n"
    "    - name: nightly\n"
    '      schedule: "0 2 * * *"\n'
    '      args: ["python", "-m", "nightly"]\n'
    "    - name: report\n"
    '      args: ["python", "-m", "report"]\n'
)


async def table_counts(store: Store) -> dict[str, int]:
    """Row counts of every table of the data model."""
    async with store.read() as session:
        return {
            table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
        }


async def _shop(ctx: Context, *environments: str) -> None:
    project = await make_project(ctx)
    for name in environments or ("stage",):
        await make_environment(ctx, project, name)


async def _apply(api: Api, spec_yaml: str, **extra: Any) -> dict[str, Any]:
    data = await api.data(APPLY, {"input": {"specYaml": spec_yaml, **extra}})
    result: dict[str, Any] = data["applyService"]
    return result


async def _applied(api: Api, spec_yaml: str, **extra: Any) -> dict[str, Any]:
    result = await _apply(api, spec_yaml, **extra)
    assert result["__typename"] == "ApplyServiceSuccess", result
    return result


async def _audit_actions(store: Store) -> list[tuple[str, str | None]]:
    async with store.read() as session:
        rows = (await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all()
    return [(a.action, a.entity_id) for a in rows]


async def _event_types(store: Store) -> list[str]:
    """What subscribers see: the events of every stream but the controllers' work queues."""
    async with store.read() as session:
        query = select(Event).where(~Event.stream.startswith("work:")).order_by(Event.id)
        rows = (await session.scalars(query)).all()
    return [e.type for e in rows]


# -- create, re-apply, update ----------------------------------------------------------------


async def test_apply_creates_service_with_version_one(api: Api, ctx: Context, store: Store) -> None:
    await _shop(ctx)
    before = await table_counts(store)

    result = await _applied(api, service_yaml())

    assert result["created"] is True
    assert result["unchanged"] is False
    service = result["service"]
    assert service["id"].startswith("svc_")
    assert service["name"] == "api"
    assert service["type"] == "API"
    assert service["generation"] == 1
    version = result["version"]
    assert version["version"] == 1
    assert version["id"].startswith("ssv_")
    assert version["digest"].startswith("sha256:")
    assert version["gitSha"] is None
    # A new service: the whole document is an addition, nothing else.
    assert [c["path"] for c in result["changes"]] == ["apiVersion", "kind", "metadata", "spec"]
    assert {c["kind"] for c in result["changes"]} == {"added"}
    assert all(c["before"] is None for c in result["changes"])
    metadata = next(c for c in result["changes"] if c["path"] == "metadata")
    assert metadata["after"] == {"project": "shop", "environment": "stage", "name": "api"}
    # Defaults made explicit in the stored document.
    assert version["spec"]["spec"]["runtime"]["replicas"] == {"min": 1, "max": 2}
    assert version["spec"]["spec"]["runtime"]["build"] == {"context": ".", "builder": "auto"}

    after = await table_counts(store)
    assert after["services"] == before["services"] + 1
    assert after["service_spec_versions"] == before["service_spec_versions"] + 1
    assert after["audit_events"] == before["audit_events"] + 1
    # The project's event, and the deployment controller's wake-up (for the routes).
    assert after["events"] == before["events"] + 2
    assert (await _audit_actions(store))[-1] == ("service.apply", service["id"])
    assert (await _event_types(store))[-1] == "service.created"


async def test_reapplying_identical_spec_changes_nothing_but_is_audited(
    api: Api, ctx: Context, store: Store
) -> None:
    await _shop(ctx)
    first = await _applied(api, service_yaml())
    before = await table_counts(store)
    events_before = await _event_types(store)

    # Comments, quoting and key order do not change the normalised document.
    same = "# the same service, written differently\n" + service_yaml().replace(
        "name: api", 'name: "api"'
    )
    again = await _applied(api, same)

    assert again["unchanged"] is True
    assert again["created"] is False
    assert again["changes"] == []
    assert again["service"]["id"] == first["service"]["id"]
    assert again["service"]["generation"] == 1
    assert again["version"]["id"] == first["version"]["id"]
    assert again["version"]["version"] == 1

    after = await table_counts(store)
    assert after["service_spec_versions"] == before["service_spec_versions"]
    assert after["audit_events"] == before["audit_events"] + 1
    assert after["events"] == before["events"]
    assert await _event_types(store) == events_before
    assert {k: v for k, v in after.items() if k != "audit_events"} == {
        k: v for k, v in before.items() if k != "audit_events"
    }
    async with store.read() as session:
        audit = (await session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()))).first()
    assert audit is not None
    assert (audit.action, audit.entity_id) == ("service.apply", first["service"]["id"])
    assert audit.payload["unchanged"] is True
    assert audit.payload["version"] == 1


async def test_changed_spec_becomes_version_two_with_exact_changes(
    api: Api, ctx: Context, store: Store
) -> None:
    await _shop(ctx)
    env_a = "  env:\n    - name: A\n      value: '1'\n"
    env_ab = env_a + "    - name: B\n      value: 2\n"
    first = await _applied(api, service_yaml(replicas=(1, 3), extra_spec=env_a))

    second = await _applied(api, service_yaml(replicas=(2, 3), extra_spec=env_ab))

    assert second["created"] is False
    assert second["unchanged"] is False
    assert second["service"]["id"] == first["service"]["id"]
    assert second["service"]["generation"] == 2
    assert second["version"]["version"] == 2
    assert second["version"]["id"] != first["version"]["id"]
    assert second["changes"] == [
        {"path": "spec.env[name=B]", "kind": "added", "before": None,
         "after": {"name": "B", "value": "2"}},
        {"path": "spec.runtime.replicas.min", "kind": "changed", "before": 1, "after": 2},
    ]  # fmt: skip

    versions = await api.data(
        """query($id: ID!) { service(id: $id) { generation spec { version }
             specVersions { totalCount nodes { version } } } }""",
        {"id": first["service"]["id"]},
    )
    assert versions["service"] == {
        "generation": 2,
        "spec": {"version": 2},
        "specVersions": {"totalCount": 2, "nodes": [{"version": 2}, {"version": 1}]},
    }
    assert await _event_types(store) == [
        "project.created",
        "environment.created",
        "service.created",
        "service.updated",
    ]
    async with store.read() as session:
        query = select(Event).where(~Event.stream.startswith("work:"))
        event = (await session.scalars(query.order_by(Event.id.desc()))).first()
    assert event is not None
    assert event.payload == {"name": "api", "environment": "stage", "version": 2, "changes": 2}


async def test_removing_an_env_var_is_named(api: Api, ctx: Context) -> None:
    await _shop(ctx)
    env = "  env:\n    - name: A\n      value: x\n    - name: B\n      value: y\n"
    await _applied(api, service_yaml(extra_spec=env))
    result = await _applied(api, service_yaml(extra_spec="  env:\n    - name: B\n      value: y\n"))
    assert result["changes"] == [
        {"path": "spec.env[name=A]", "kind": "removed", "before": {"name": "A", "value": "x"},
         "after": None},
    ]  # fmt: skip


async def test_changed_field_of_named_item_has_bracketed_path(api: Api, ctx: Context) -> None:
    """Regression (store/spec/diff.py:65): a field changed inside a named list item is reported at
    ``spec.env.name=B.value``; additions and removals use ``spec.env[name=B]``, so the
    same item is named two ways. Expected ``spec.env[name=B].value``."""
    await _shop(ctx)
    env = "  env:\n    - name: A\n      value: x\n    - name: B\n      value: y\n"
    await _applied(api, service_yaml(extra_spec=env))
    result = await _applied(api, service_yaml(extra_spec="  env:\n    - name: B\n      value: z\n"))
    assert [(c["path"], c["kind"], c["before"], c["after"]) for c in result["changes"]] == [
        ("spec.env[name=A]", "removed", {"name": "A", "value": "x"}, None),
        ("spec.env[name=B].value", "changed", "y", "z"),
    ]


async def test_first_env_var_added_is_named(api: Api, ctx: Context) -> None:
    """Regression (store/spec/diff.py:38, ``_named``): an empty list is not treated as a list of
    named things, so adding the first variable (or removing the last) is reported as the
    whole ``spec.env`` changing from [] rather than as ``spec.env[name=A]`` added, unlike
    every later addition."""
    await _shop(ctx)
    await _applied(api, service_yaml())
    added = await _applied(api, service_yaml(extra_spec="  env:\n    - name: A\n      value: x\n"))
    assert added["changes"] == [
        {"path": "spec.env[name=A]", "kind": "added", "before": None,
         "after": {"name": "A", "value": "x"}},
    ]  # fmt: skip


# -- routes, volumes and jobs of the spec --------------------------------------------------


async def test_spec_routes_volumes_and_jobs_become_rows(api: Api, ctx: Context) -> None:
    await _shop(ctx)
    spec = service_yaml(
        routes=[("API.Example.com", "/"), ("api.example.com", "/admin/")],
        extra_spec=VOLUMES_AND_JOBS,
    )
    result = await _applied(api, spec)
    service_id = result["service"]["id"]

    data = (await api.data(SERVICE_RESOURCES, {"id": service_id}))["service"]
    assert [(r["host"], r["path"], r["source"]) for r in data["routes"]["nodes"]] == [
        ("api.example.com", "/", "SPEC"),
        ("api.example.com", "/admin", "SPEC"),
    ]
    assert data["routes"]["totalCount"] == 2
    assert {r["service"]["id"] for r in data["routes"]["nodes"]} == {service_id}
    assert [(v["name"], v["mountPath"], v["size"]) for v in data["volumes"]["nodes"]] == [
        ("cache", "/var/cache", "1Gi"),
        ("data", "/var/data", "10Gi"),
    ]
    assert {v["service"]["id"] for v in data["volumes"]["nodes"]} == {service_id}
    assert [
        (j["name"], j["schedule"], j["onDemand"], j["args"]) for j in data["jobs"]["nodes"]
    ] == [
        ("nightly", "0 2 * * *", False, ["python", "-m", "nightly"]),
        ("report", None, True, ["python", "-m", "report"]),
    ]
    assert {j["service"]["id"] for j in data["jobs"]["nodes"]} == {service_id}


async def test_reapply_deletes_dropped_routes_and_jobs_and_detaches_dropped_volumes(
    api: Api, ctx: Context, store: Store
) -> None:
    await _shop(ctx)
    first = await _applied(
        api,
        service_yaml(
            routes=[("api.example.com", "/"), ("api.example.com", "/admin")],
            extra_spec=VOLUMES_AND_JOBS,
        ),
    )
    service_id = first["service"]["id"]
    before = (await api.data(SERVICE_RESOURCES, {"id": service_id}))["service"]
    route_ids = {r["path"]: r["id"] for r in before["routes"]["nodes"]}
    volume_ids = {v["name"]: v["id"] for v in before["volumes"]["nodes"]}
    job_ids = {j["name"]: j["id"] for j in before["jobs"]["nodes"]}

    trimmed = (
        "  volumes:\n"
        "    - name: data\n"
        "      mountPath: /var/data\n"
        "      size: 20Gi\n"
        "  jobs:\n"
        "    - name: nightly\n"
        '      schedule: "0 3 * * *"\n'
        '      args: ["python", "-m", "nightly"]\n'
        "      retries: 2\n"
    )
    second = await _applied(
        api, service_yaml(routes=[("api.example.com", "/")], extra_spec=trimmed)
    )
    assert second["version"]["version"] == 2

    after = (await api.data(SERVICE_RESOURCES, {"id": service_id}))["service"]
    # What stayed keeps its identity and takes the new settings.
    assert [(r["id"], r["path"]) for r in after["routes"]["nodes"]] == [(route_ids["/"], "/")]
    assert [(v["id"], v["size"]) for v in after["volumes"]["nodes"]] == [
        (volume_ids["data"], "20Gi")
    ]
    assert [(j["id"], j["schedule"], j["retries"]) for j in after["jobs"]["nodes"]] == [
        (job_ids["nightly"], "0 3 * * *", 2)
    ]

    async with store.read() as session:
        assert await session.get(Route, route_ids["/admin"]) is None
        assert await session.get(Job, job_ids["report"]) is None
        cache = await session.get(Volume, volume_ids["cache"])
    # The dropped volume is kept (its data), detached from the service.
    assert cache is not None
    assert cache.service_id is None
    assert cache.name == "cache"

    nodes = await api.data(
        """query($ids: [ID!]!) { nodes(ids: $ids) { __typename id
             ... on Volume { name service { id } } } }""",
        {"ids": [route_ids["/admin"], job_ids["report"], volume_ids["cache"]]},
    )
    assert nodes["nodes"] == [
        None,
        None,
        {"__typename": "Volume", "id": volume_ids["cache"], "name": "cache", "service": None},
    ]
    env_volumes = await api.data(
        """{ service(project: "shop", environment: "stage", name: "api") {
             environment { volumes { nodes { name service { id } } } } } }"""
    )
    assert env_volumes["service"]["environment"]["volumes"]["nodes"] == [
        {"name": "cache", "service": None},
        {"name": "data", "service": {"id": service_id}},
    ]


# -- failures change nothing ---------------------------------------------------------------


async def test_invalid_spec_is_a_validation_error_with_path_and_line(
    api: Api, ctx: Context, store: Store
) -> None:
    await _shop(ctx)
    before = await table_counts(store)

    result = await _apply(api, service_yaml(replicas=(6, 5)))

    assert result["__typename"] == "ValidationError"
    assert result["code"] == "VALIDATION_FAILED"
    message = "spec.runtime.replicas: min 6 is greater than max 5 (line 11)"
    assert result["message"] == message
    assert result["path"] == ["input", "specYaml", "spec", "runtime", "replicas"]
    assert result["problems"] == [
        {
            "path": ["input", "specYaml", "spec", "runtime", "replicas"],
            "message": message,
            "line": 11,
        }
    ]
    assert await table_counts(store) == before


async def test_every_problem_of_a_spec_is_reported_with_its_line(
    api: Api, ctx: Context, store: Store
) -> None:
    await _shop(ctx)
    before = await table_counts(store)
    spec = service_yaml(routes=[("bad_host!", "/")]).replace(
        "    ports: [8080]\n", "    ports: [8080]\n    replicsa: 3\n"
    )
    lines = spec.splitlines()
    host_line = next(i for i, line in enumerate(lines, 1) if "bad_host!" in line)
    typo_line = next(i for i, line in enumerate(lines, 1) if "replicsa" in line)

    result = await _apply(api, spec)

    assert result["__typename"] == "ValidationError"
    problems = {tuple(p["path"]): p for p in result["problems"]}
    assert set(problems) == {
        ("input", "specYaml", "spec", "runtime", "replicsa"),
        ("input", "specYaml", "spec", "routes", "0", "host"),
    }
    typo = problems[("input", "specYaml", "spec", "runtime", "replicsa")]
    assert typo["line"] == typo_line
    assert typo["message"] == (
        f"spec.runtime.replicsa: is not a known field; did you mean 'replicas'? (line {typo_line})"
    )
    host = problems[("input", "specYaml", "spec", "routes", "0", "host")]
    assert host["line"] == host_line
    assert host["message"].startswith("spec.routes[0].host: host 'bad_host!' is not a lowercase")
    assert result["message"].endswith("(and 1 more problems)")
    assert await table_counts(store) == before


async def test_missing_project_and_environment_are_not_found(
    api: Api, ctx: Context, store: Store
) -> None:
    await _shop(ctx)
    before = await table_counts(store)

    no_project = await _apply(api, service_yaml(project="nope"))
    assert no_project["__typename"] == "NotFoundError"
    assert no_project["code"] == "NOT_FOUND"
    assert no_project["message"] == (
        "Project 'nope' not found; create it first (createProject, or `enclii deploy` "
        "creates it when your role allows)."
    )
    assert no_project["path"] == ["input", "specYaml", "metadata", "project"]

    no_env = await _apply(api, service_yaml(environment="prod"))
    assert no_env["__typename"] == "NotFoundError"
    assert no_env["message"] == (
        "Environment 'prod' not found in project 'shop'; create it first (createEnvironment)."
    )
    assert no_env["path"] == ["input", "specYaml", "metadata", "environment"]

    assert await table_counts(store) == before


async def test_spec_route_bound_to_another_service_is_a_conflict(
    api: Api, ctx: Context, store: Store
) -> None:
    await _shop(ctx)
    owner = await _applied(api, service_yaml(name="api", routes=[("shop.example.com", "/api/")]))
    existing = (await api.data(SERVICE_RESOURCES, {"id": owner["service"]["id"]}))["service"]
    route_id = existing["routes"]["nodes"][0]["id"]
    web = await _applied(api, service_yaml(name="web"))
    before = await table_counts(store)

    # A new service, and an existing one re-applied, both refused the same way.
    for name in ("other", "web"):
        result = await _apply(
            api,
            service_yaml(
                name=name, routes=[("shop.example.com", "/"), ("shop.example.com", "/api")]
            ),
        )
        assert result["__typename"] == "ConflictError", result
        assert result["code"] == "CONFLICT"
        assert result["message"] == "Route conflict: host already bound in env 'stage'."
        assert result["path"] == ["input", "specYaml", "spec", "routes", "1", "host"]
        assert result["existingId"] == route_id
        assert result["existing"] == {"__typename": "Route", "id": route_id}
        assert await table_counts(store) == before

    still = await api.data(
        """query($id: ID!) { service(id: $id) { generation spec { version }
             routes { totalCount } } }""",
        {"id": web["service"]["id"]},
    )
    assert still["service"] == {
        "generation": 1,
        "spec": {"version": 1},
        "routes": {"totalCount": 0},
    }
    missing = await api.data(
        '{ service(project: "shop", environment: "stage", name: "other") { id } }'
    )
    assert missing["service"] is None


async def test_same_spec_route_in_another_environment_is_fine(api: Api, ctx: Context) -> None:
    await _shop(ctx, "stage", "prod")
    routes = [("shop.example.com", "/")]
    await _applied(api, service_yaml(environment="stage", routes=routes))
    prod = await _applied(api, service_yaml(environment="prod", routes=routes))
    assert prod["created"] is True


async def test_volume_or_job_of_another_service_is_a_conflict(
    api: Api, ctx: Context, store: Store
) -> None:
    await _shop(ctx)
    owner = await _applied(api, service_yaml(name="api", extra_spec=VOLUMES_AND_JOBS))
    owned = (await api.data(SERVICE_RESOURCES, {"id": owner["service"]["id"]}))["service"]
    before = await table_counts(store)

    volume = await _apply(
        api,
        service_yaml(
            name="web",
            extra_spec="  volumes:\n    - name: other\n      mountPath: /o\n"
            "    - name: data\n      mountPath: /d\n",
        ),
    )
    assert volume["__typename"] == "ConflictError"
    assert volume["message"] == (
        "Volume 'data' already belongs to another service in env 'stage'; choose another name."
    )
    assert volume["path"] == ["input", "specYaml", "spec", "volumes", "1", "name"]
    data_id = next(v["id"] for v in owned["volumes"]["nodes"] if v["name"] == "data")
    assert volume["existingId"] == data_id

    job = await _apply(api, service_yaml(name="web", extra_spec="  jobs:\n    - name: nightly\n"))
    assert job["__typename"] == "ConflictError"
    assert job["message"] == (
        "Job 'nightly' already belongs to another service in env 'stage'; choose another name."
    )
    assert job["path"] == ["input", "specYaml", "spec", "jobs", "0", "name"]
    nightly_id = next(j["id"] for j in owned["jobs"]["nodes"] if j["name"] == "nightly")
    assert job["existing"] == {"__typename": "Job", "id": nightly_id}
    assert await table_counts(store) == before


# -- templating ----------------------------------------------------------------------------

IMAGE_SPEC = (
    "apiVersion: enclii.dev/v1\n"
    "kind: Service\n"
    "metadata: {project: shop, environment: stage, name: api}\n"
    "spec:\n"
    "  runtime:\n"
    '    image: "registry.example.com/shop/api:{{ git.sha }}"\n'
    "  env:\n"
    "    - name: BUILD\n"
    '      value: "{{git.short_sha}}"\n'
)


async def test_git_sha_fills_templates_and_is_stored(api: Api, ctx: Context, store: Store) -> None:
    await _shop(ctx)
    sha = "3fa2c1d0e9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4"

    result = await _applied(api, IMAGE_SPEC, gitSha=sha)

    version = result["version"]
    assert version["gitSha"] == sha
    assert f'image: "registry.example.com/shop/api:{sha}"' in version["specYaml"]
    assert f'value: "{sha[:12]}"' in version["specYaml"]
    assert "{{" not in version["specYaml"]
    assert version["spec"]["spec"]["runtime"]["image"] == f"registry.example.com/shop/api:{sha}"
    assert version["spec"]["spec"]["env"] == [{"name": "BUILD", "value": sha[:12]}]
    async with store.read() as session:
        row = await session.get(ServiceSpecVersion, version["id"])
    assert row is not None
    assert row.git_sha == sha
    assert row.spec_yaml == IMAGE_SPEC.replace("{{ git.sha }}", sha).replace(
        "{{git.short_sha}}", sha[:12]
    )

    # A new commit is a new version, even though the YAML text is the same.
    other = "0" * 40
    again = await _applied(api, IMAGE_SPEC, gitSha=other)
    assert again["version"]["version"] == 2
    # (The env change's path is checked by the diff-path test above.)
    assert [(c["kind"], c["before"], c["after"]) for c in again["changes"]] == [
        ("changed", sha[:12], other[:12]),
        ("changed", f"registry.example.com/shop/api:{sha}",
         f"registry.example.com/shop/api:{other}"),
    ]  # fmt: skip
    assert again["changes"][1]["path"] == "spec.runtime.image"


async def test_template_without_a_value_is_refused(api: Api, ctx: Context, store: Store) -> None:
    await _shop(ctx)
    before = await table_counts(store)
    result = await _apply(api, IMAGE_SPEC)
    assert result["__typename"] == "ValidationError"
    assert [p["path"] for p in result["problems"]] == [
        ["input", "specYaml", "spec", "runtime", "image"],
        ["input", "specYaml", "spec", "env", "0", "value"],
    ]
    assert [p["line"] for p in result["problems"]] == [6, 9]
    assert result["problems"][0]["message"] == (
        "spec.runtime.image: {{ git.sha }} has no value here; apply from a git checkout or "
        "pass it explicitly (gitSha) (line 6)"
    )
    assert await table_counts(store) == before


# -- deleteService -------------------------------------------------------------------------


async def test_delete_service_releases_its_resources_and_frees_the_name(
    api: Api, ctx: Context, store: Store
) -> None:
    await _shop(ctx)
    spec = service_yaml(routes=[("api.example.com", "/")], extra_spec=VOLUMES_AND_JOBS)
    created = await _applied(api, spec)
    service_id = created["service"]["id"]
    resources = (await api.data(SERVICE_RESOURCES, {"id": service_id}))["service"]
    volume_ids = sorted(v["id"] for v in resources["volumes"]["nodes"])
    await _applied(api, service_yaml(name="web"))

    deleted = (await api.data(DELETE, {"id": service_id}))["deleteService"]
    assert deleted == {"__typename": "DeleteServiceSuccess", "deletedServiceId": service_id}

    seen = await api.data(
        """query($id: ID!) {
             node(id: $id) { id }
             service(id: $id) { id }
             byName: service(project: "shop", environment: "stage", name: "api") { id }
             project(slug: "shop") { environment(name: "stage") {
               services { totalCount nodes { name } }
               byName: service(name: "api") { id }
               routes { totalCount } jobs { totalCount }
               volumes { nodes { id service { id } } } } } }""",
        {"id": service_id},
    )
    assert seen["node"] is None
    assert seen["service"] is None
    assert seen["byName"] is None
    stage = seen["project"]["environment"]
    assert stage["services"] == {"totalCount": 1, "nodes": [{"name": "web"}]}
    assert stage["byName"] is None
    assert stage["routes"] == {"totalCount": 0}
    assert stage["jobs"] == {"totalCount": 0}
    assert sorted(v["id"] for v in stage["volumes"]["nodes"]) == volume_ids
    assert {v["service"] is None for v in stage["volumes"]["nodes"]} == {True}

    async with store.read() as session:
        row = await session.get(Service, service_id)
        routes = (await session.scalars(select(Route).where(Route.service_id == service_id))).all()
        jobs = (await session.scalars(select(Job).where(Job.service_id == service_id))).all()
    assert row is not None and row.deleted_at is not None  # a tombstone for controllers
    assert routes == [] and jobs == []
    assert (await _audit_actions(store))[-1] == ("service.delete", service_id)
    assert (await _event_types(store))[-1] == "service.deleted"

    # The name is free again: a new service, with a new ID (the kept volumes reattach).
    again = await _applied(api, spec)
    assert again["created"] is True
    assert again["service"]["id"] != service_id
    assert again["version"]["version"] == 1
    new = (await api.data(SERVICE_RESOURCES, {"id": again["service"]["id"]}))["service"]
    assert sorted(v["id"] for v in new["volumes"]["nodes"]) == volume_ids
    assert [r["source"] for r in new["routes"]["nodes"]] == ["SPEC"]
    assert new["jobs"]["totalCount"] == 2


async def test_delete_unknown_or_deleted_service_is_not_found(
    api: Api, ctx: Context, store: Store
) -> None:
    await _shop(ctx)
    created = await _applied(api, service_yaml())
    service_id = created["service"]["id"]
    await api.data(DELETE, {"id": service_id})
    before = await table_counts(store)

    for unknown in (service_id, "svc_01M8EH5K0V56WD37Z896MQ0S8X", "not-an-id"):
        result = (await api.data(DELETE, {"id": unknown}))["deleteService"]
        assert result == {
            "__typename": "NotFoundError",
            "message": f"Service {unknown!r} not found.",
            "code": "NOT_FOUND",
            "path": ["input", "id"],
        }
    assert await table_counts(store) == before


async def test_deleted_service_spec_route_is_free_for_another_service(
    api: Api, ctx: Context
) -> None:
    await _shop(ctx)
    routes = [("shop.example.com", "/")]
    first = await _applied(api, service_yaml(name="api", routes=routes))
    await api.data(DELETE, {"id": first["service"]["id"]})
    second = await _applied(api, service_yaml(name="web", routes=routes))
    assert second["created"] is True
