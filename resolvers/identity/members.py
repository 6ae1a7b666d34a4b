"""Who belongs to the account and its projects, and with which role.

Only Owners and Admins manage roles (Appendix C); only an Owner may grant, change or remove
the Owner role; and an account always keeps at least one Owner.
"""

from __future__ import annotations

from sqlalchemy import func, select

from resolvers.context import Context
from resolvers.errors import Conflict, Forbidden, NotFound, ValidationFailed
from resolvers.identity.authenticate import invitation_subject
from resolvers.identity.guard import require
from resolvers.identity.rbac import Permission
from resolvers.lookup import find_node, get_project
from resolvers.mutation import Change, mutate, snapshot
from store.ids import new_id
from store.models import Account, Membership, Project, Role, User


def _email_problem(email: str) -> str | None:
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in email):
        return f"{email!r} is not an email address"
    return None


def _owner_only(ctx: Context, project: Project | None, role: Role) -> None:
    if role is Role.OWNER and ctx.actor.role_on(project.id if project else None) is not Role.OWNER:
        raise Forbidden(
            "Forbidden: only an Owner may grant, change or remove the owner role.",
            Permission.ROLES.value,
            project.id if project else None,
        )


async def _lock_account(change: Change, account_id: str) -> None:
    """Serialise role changes of one account (PostgreSQL holds the row until commit), so
    two Owners stepping down at once cannot both see the other as the remaining Owner."""
    await change.session.execute(
        select(Account.id).where(Account.id == account_id).with_for_update()
    )


async def _last_owner(change: Change, membership: Membership) -> bool:
    if membership.role is not Role.OWNER or membership.project_id is not None:
        return False
    owners = await change.session.scalar(
        select(func.count()).where(
            Membership.account_id == membership.account_id,
            Membership.project_id.is_(None),
            Membership.role == Role.OWNER,
        )
    )
    return int(owners or 0) <= 1


async def invite_member(ctx: Context, email: str, role: Role, project_id: str | None) -> Membership:
    email = email.strip().lower()
    if problem := _email_problem(email):
        raise ValidationFailed.one(("input", "email"), problem)
    async with mutate(ctx, "member.invite") as change:
        session = change.session
        project = None
        if project_id is not None:
            project = await get_project(session, ctx, project_id, ("input", "projectId"))
        require(ctx, Permission.ROLES, project)
        _owner_only(ctx, project, role)
        user = await session.scalar(
            select(User).where(
                User.account_id == ctx.actor.account_id, func.lower(User.email) == email
            )
        )
        if user is None:
            user = User(
                id=new_id("user"),
                account_id=ctx.actor.account_id,
                subject=invitation_subject(email),
                email=email,
                display_name=email,
            )
            session.add(user)
            await session.flush()
        scope_ref = project.id if project else ctx.actor.account_id
        existing = await session.scalar(
            select(Membership).where(
                Membership.scope_ref == scope_ref, Membership.user_id == user.id
            )
        )
        if existing is not None:
            where = f"project {project.slug!r}" if project else "the account"
            raise Conflict(
                f"{email} is already a member of {where} as {existing.role.value}; use "
                "changeRole to change it.",
                ("input", "email"),
                existing_id=existing.id,
            )
        membership = Membership(
            id=new_id("membership"),
            account_id=ctx.actor.account_id,
            project_id=project.id if project else None,
            user_id=user.id,
            scope_ref=scope_ref,
            role=role,
        )
        session.add(membership)
        await session.flush()
        change.record(
            entity_type="membership",
            entity_id=membership.id,
            project_id=membership.project_id,
            before=None,
            after=snapshot(membership),
            email=email,
        )
    return membership


async def _membership(
    change: Change, ctx: Context, membership_id: str
) -> tuple[Membership, Project | None]:
    await _lock_account(change, ctx.actor.account_id)
    row = await find_node(change.session, ctx, membership_id)
    if not isinstance(row, Membership):
        raise NotFound(f"Membership {membership_id!r} not found.", ("input", "id"))
    project = None
    if row.project_id is not None:
        project = await get_project(change.session, ctx, row.project_id, ("input", "id"))
    require(ctx, Permission.ROLES, project)
    return row, project


async def change_role(ctx: Context, membership_id: str, role: Role) -> Membership:
    async with mutate(ctx, "member.change-role") as change:
        membership, project = await _membership(change, ctx, membership_id)
        _owner_only(ctx, project, membership.role)
        _owner_only(ctx, project, role)
        if role is not Role.OWNER and await _last_owner(change, membership):
            raise Conflict(
                "The account must keep at least one Owner; make someone else Owner first.",
                ("input", "role"),
                existing_id=membership.id,
            )
        before = snapshot(membership)
        membership.role = role
        await change.session.flush()
        change.record(
            entity_type="membership",
            entity_id=membership.id,
            project_id=membership.project_id,
            before=before,
            after=snapshot(membership),
        )
    return membership


async def remove_member(ctx: Context, membership_id: str) -> Membership:
    async with mutate(ctx, "member.remove") as change:
        membership, project = await _membership(change, ctx, membership_id)
        _owner_only(ctx, project, membership.role)
        if await _last_owner(change, membership):
            raise Conflict(
                "The account must keep at least one Owner; make someone else Owner first.",
                ("input", "id"),
                existing_id=membership.id,
            )
        before = snapshot(membership)
        await change.session.delete(membership)
        await change.session.flush()
        change.record(
            entity_type="membership",
            entity_id=membership.id,
            project_id=membership.project_id,
            before=before,
            after=None,
        )
    return membership
