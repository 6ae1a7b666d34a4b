"""Viewer.role/can and Project.viewerRole/viewerCan: what the caller may do, as the guard
will decide it — role and token scopes together, on the account or on one project."""

from __future__ import annotations

import dataclasses
from typing import Any, Final

import pytest

from resolvers.context import Actor, Context
from resolvers.identity.capabilities import PERMISSIONS, Capabilities, capabilities
from resolvers.identity.rbac import MATRIX, Permission
from resolvers.identity.tokens import create_token
from store.db import Store
from store.ids import new_id
from store.models import Membership, Role
from tests.factories import make_project
from tests.graph.test_members import add_member
from tests.helpers import Api

CAN = "deploy routes observe readAudit writeProject writeEnvironments manageRoles readCost"
QUERY: Final = f"""
query($slug: String!) {{
  viewer {{ role can {{ {CAN} }} }}
  project(slug: $slug) {{ viewerRole viewerCan {{ {CAN} }} }}
}}
"""
FIELDS: Final = {
    "deploy": Permission.DEPLOY,
    "routes": Permission.ROUTES,
    "observe": Permission.OBSERVE,
    "readAudit": Permission.AUDIT_READ,
    "writeProject": Permission.PROJECT_WRITE,
    "writeEnvironments": Permission.ENVIRONMENT_WRITE,
    "manageRoles": Permission.ROLES,
    "readCost": Permission.COST_READ,
}
NOTHING: Final = dict.fromkeys(FIELDS, False)


def of_role(role: Role | None) -> dict[str, bool]:
    """What the matrix lets ``role`` do, with an every-scope token."""
    return {name: role in MATRIX[p] for name, p in FIELDS.items()}


def test_every_capability_is_one_permission() -> None:
    assert set(PERMISSIONS) == {f.name for f in dataclasses.fields(Capabilities)}
    assert {p for p in PERMISSIONS.values()} == set(FIELDS.values())
    camel = {
        "".join(w.title() if i else w for i, w in enumerate(n.split("_"))) for n in PERMISSIONS
    }
    assert camel == set(FIELDS)


@pytest.mark.parametrize(
    "actor",
    [
        Actor(id="u", display="u", account_id="a", account_role=Role.ADMIN),
        Actor(id="u", display="u", account_id="a", project_roles={"p": Role.DEVELOPER}),
        Actor(
            id="u",
            display="u",
            account_id="a",
            account_role=Role.OWNER,
            scopes=frozenset({"deploy:write", "cost:read"}),
        ),
        Actor(
            id="u",
            display="u",
            account_id="a",
            account_role=Role.OWNER,
            scopes=frozenset({"*"}),
            token_project_id="p",
        ),
    ],
    ids=["account-admin", "project-developer", "scoped-owner", "project-token"],
)
def test_capabilities_ask_the_guards_question(actor: Actor) -> None:
    for project_id in (None, "p", "other"):
        found = capabilities(actor, project_id)
        for name, permission in PERMISSIONS.items():
            assert getattr(found, name) is actor.can(permission, project_id), (name, project_id)


async def _ask(api: Api, slug: str = "shop") -> dict[str, Any]:
    return await api.data(QUERY, {"slug": slug})


async def test_the_owner_may_do_everything(api: Api, ctx: Context) -> None:
    await make_project(ctx, "shop")
    data = await _ask(api)
    assert data["viewer"] == {"role": "OWNER", "can": of_role(Role.OWNER)}
    assert data["project"] == {"viewerRole": "OWNER", "viewerCan": of_role(Role.OWNER)}
    assert all(data["viewer"]["can"].values())


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
async def test_an_account_role_applies_everywhere(
    role: Role, api: Api, ctx: Context, store: Store
) -> None:
    project = await make_project(ctx, "shop")
    member = await add_member(store, api, project.account_id, f"m-{role.value}", role)
    data = await _ask(member.api)
    assert data["viewer"] == {"role": role.name, "can": of_role(role)}
    assert data["project"] == {"viewerRole": role.name, "viewerCan": of_role(role)}


async def test_a_project_role_applies_on_its_project_only(
    api: Api, ctx: Context, store: Store
) -> None:
    shop = await make_project(ctx, "shop")
    await make_project(ctx, "blog")
    member = await add_member(store, api, shop.account_id, "dev", Role.DEVELOPER, shop.id)
    data = await _ask(member.api)
    assert data["viewer"] == {"role": None, "can": NOTHING}
    assert data["project"] == {"viewerRole": "DEVELOPER", "viewerCan": of_role(Role.DEVELOPER)}
    assert data["project"]["viewerCan"]["deploy"] is True
    assert data["project"]["viewerCan"]["manageRoles"] is False
    # A project the member has no role on is not there at all.
    assert (await _ask(member.api, "blog"))["project"] is None


async def test_an_account_role_and_a_stronger_project_role_combine(
    api: Api, ctx: Context, store: Store
) -> None:
    shop = await make_project(ctx, "shop")
    member = await add_member(store, api, shop.account_id, "ro", Role.READONLY)
    async with store.write() as session:
        session.add(
            Membership(
                id=new_id("membership"),
                account_id=shop.account_id,
                project_id=shop.id,
                user_id=member.user_id,
                scope_ref=shop.id,
                role=Role.ADMIN,
            )
        )
    data = await _ask(member.api)
    assert data["viewer"]["role"] == "READONLY"
    assert data["viewer"]["can"] == of_role(Role.READONLY)
    assert data["project"] == {"viewerRole": "ADMIN", "viewerCan": of_role(Role.ADMIN)}


async def test_token_scopes_narrow_what_the_role_allows(api: Api, ctx: Context) -> None:
    """An Owner's token with only logs:read and deploy:write may observe and deploy, and
    nothing else — whatever the role would allow."""
    await make_project(ctx, "shop")
    token = await create_token(ctx, "narrow", ["logs:read", "deploy:write"], None, None)
    narrow = Api(api.client, {"authorization": f"Bearer {token.secret}"})
    data = await _ask(narrow)
    expected = {**NOTHING, "observe": True, "deploy": True}
    assert data["viewer"] == {"role": "OWNER", "can": expected}
    assert data["project"] == {"viewerRole": "OWNER", "viewerCan": expected}


async def test_a_project_token_may_do_nothing_on_the_account(api: Api, ctx: Context) -> None:
    shop = await make_project(ctx, "shop")
    await make_project(ctx, "blog")
    token = await create_token(ctx, "shop only", ["*"], shop.id, None)
    limited = Api(api.client, {"authorization": f"Bearer {token.secret}"})
    data = await _ask(limited)
    assert data["viewer"]["can"] == NOTHING
    assert data["project"] == {"viewerRole": "OWNER", "viewerCan": of_role(Role.OWNER)}
    assert (await _ask(limited, "blog"))["project"] is None
