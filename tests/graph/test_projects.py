"""createProject, updateProject, createEnvironment, updateEnvironment over GraphQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from store.db import Store
from store.models import AuditEvent, Environment, Event, Project
from tests.helpers import Api

CREATE_PROJECT = """
mutation($input: CreateProjectInput!) {
  createProject(input: $input) {
    __typename
    ... on CreateProjectSuccess { project { id name slug } }
    ... on Error { message code path }
  }
}
"""

CREATE_ENV = """
mutation($input: CreateEnvironmentInput!) {
  createEnvironment(input: $input) {
    __typename
    ... on CreateEnvironmentSuccess {
      environment { id name region isPreview
        limits { cpuMillicores memoryMib egressGib budgetMonthlyUsd } }
    }
    ... on ValidationError { problems { path message } }
    ... on Error { message code path }
  }
}
"""


async def _counts(store: Store) -> dict[str, int]:
    async with store.read() as session:
        return {
            model.__tablename__: int(
                await session.scalar(select(func.count()).select_from(model)) or 0
            )
            for model in (Project, Environment, AuditEvent, Event)
        }


async def test_create_project_derives_slug_records_audit_and_event(api: Api, store: Store) -> None:
    data = await api.data(CREATE_PROJECT, {"input": {"name": "Solarpunk SaaS"}})
    result = data["createProject"]
    assert result["__typename"] == "CreateProjectSuccess"
    project = result["project"]
    assert project["slug"] == "solarpunk-saas"
    assert project["id"].startswith("prj_")
    async with store.read() as session:
        audit = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action != "account.bootstrap")
            )
        ).all()
        events = (await session.scalars(select(Event))).all()
    assert [(a.action, a.entity_id) for a in audit] == [("project.create", project["id"])]
    assert audit[0].payload["after"]["slug"] == "solarpunk-saas"
    assert [(e.stream, e.seq, e.type) for e in events] == [
        (f"project:{project['id']}", 1, "project.created")
    ]


async def test_duplicate_slug_is_a_conflict_and_changes_nothing(api: Api, store: Store) -> None:
    await api.data(CREATE_PROJECT, {"input": {"name": "Shop"}})
    before = await _counts(store)
    data = await api.data(CREATE_PROJECT, {"input": {"name": "Another", "slug": "shop"}})
    result = data["createProject"]
    assert result["__typename"] == "ConflictError"
    assert result["code"] == "CONFLICT"
    assert "'shop' is already taken" in result["message"]
    assert result["path"] == ["input", "slug"]
    assert await _counts(store) == before


async def test_invalid_slug_names_the_field(api: Api, store: Store) -> None:
    before = await _counts(store)
    data = await api.data(CREATE_PROJECT, {"input": {"name": "X", "slug": "Not_OK"}})
    result = data["createProject"]
    assert result["__typename"] == "ValidationError"
    assert result["path"] == ["input", "slug"]
    assert "lowercase letters, digits and '-'" in result["message"]
    assert await _counts(store) == before


async def _project(api: Api) -> dict[str, Any]:
    data = await api.data(CREATE_PROJECT, {"input": {"name": "Shop"}})
    project: dict[str, Any] = data["createProject"]["project"]
    return project


async def test_create_environment_with_limits(api: Api) -> None:
    project = await _project(api)
    data = await api.data(
        CREATE_ENV,
        {
            "input": {
                "projectId": project["id"],
                "name": "prod",
                "region": "eu-west",
                "limits": {
                    "cpu": "8",
                    "memory": "16Gi",
                    "egressGib": 100,
                    "budgetMonthlyUsd": "250.50",
                },
            }
        },
    )
    env = data["createEnvironment"]["environment"]
    assert env["name"] == "prod"
    assert env["region"] == "eu-west"
    assert env["isPreview"] is False
    assert env["limits"] == {
        "cpuMillicores": 8000,
        "memoryMib": 16384,
        "egressGib": 100,
        "budgetMonthlyUsd": "250.5",
    }


async def test_preview_environment_and_region_default(api: Api) -> None:
    project = await _project(api)
    data = await api.data(
        CREATE_ENV, {"input": {"projectId": project["id"], "name": "preview-3fa2c1"}}
    )
    env = data["createEnvironment"]["environment"]
    assert env["isPreview"] is True
    assert env["region"] == "local"


async def test_environment_errors_are_precise_and_change_nothing(api: Api, store: Store) -> None:
    project = await _project(api)
    await api.data(CREATE_ENV, {"input": {"projectId": project["id"], "name": "stage"}})
    before = await _counts(store)

    bad_name = await api.data(CREATE_ENV, {"input": {"projectId": project["id"], "name": "qa"}})
    assert bad_name["createEnvironment"]["__typename"] == "ValidationError"
    assert (
        "not one of dev, stage, prod or preview-<name>" in bad_name["createEnvironment"]["message"]
    )

    bad_limits = await api.data(
        CREATE_ENV,
        {
            "input": {
                "projectId": project["id"],
                "name": "prod",
                "limits": {"cpu": "lots", "memory": "12 parsecs", "budgetMonthlyUsd": "1.234"},
            }
        },
    )
    problems = bad_limits["createEnvironment"]["problems"]
    assert [p["path"] for p in problems] == [
        ["input", "limits", "cpu"],
        ["input", "limits", "memory"],
        ["input", "limits", "budgetMonthlyUsd"],
    ]

    duplicate = await api.data(CREATE_ENV, {"input": {"projectId": project["id"], "name": "stage"}})
    assert duplicate["createEnvironment"]["__typename"] == "ConflictError"
    assert duplicate["createEnvironment"]["message"] == (
        "Environment 'stage' already exists in project 'shop'."
    )

    missing = await api.data(
        CREATE_ENV, {"input": {"projectId": "prj_01M8EH5K0V56WD37Z896MQ0S8X", "name": "dev"}}
    )
    assert missing["createEnvironment"]["__typename"] == "NotFoundError"
    assert await _counts(store) == before


async def test_update_project_and_environment(api: Api) -> None:
    project = await _project(api)
    env = (await api.data(CREATE_ENV, {"input": {"projectId": project["id"], "name": "dev"}}))[
        "createEnvironment"
    ]["environment"]
    renamed = await api.data(
        """mutation($id: ID!) { updateProject(input: {id: $id, name: "Shop 2"}) {
             ... on UpdateProjectSuccess { project { name slug } } } }""",
        {"id": project["id"]},
    )
    assert renamed["updateProject"]["project"] == {"name": "Shop 2", "slug": "shop"}
    updated = await api.data(
        """mutation($id: ID!) { updateEnvironment(input: {id: $id, region: "us-east",
             limits: {memory: "2Gi"}}) {
             ... on UpdateEnvironmentSuccess { environment { region limits { memoryMib cpuMillicores } } } } }""",
        {"id": env["id"]},
    )
    assert updated["updateEnvironment"]["environment"] == {
        "region": "us-east",
        "limits": {"memoryMib": 2048, "cpuMillicores": None},
    }
