"""Projects and their environments."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import select

from resolvers.context import Actor, Context
from resolvers.errors import Conflict, Problem, ValidationFailed
from resolvers.identity.guard import require
from resolvers.identity.rbac import Permission
from resolvers.lists import PROJECTS_OF_ACCOUNT
from resolvers.lookup import get_environment, get_project, project_by_slug
from resolvers.mutation import mutate, snapshot
from resolvers.pagination import Page, count_children, decode_cursor, load_pages, page_request
from store.ids import new_id
from store.models import Environment, Project
from store.names import environment_problem, label_problem, slugify
from store.quantity import QuantityError, byte_size, cpu_millicores

DEFAULT_REGION = "local"
MIB = 2**20


def _name_problem(name: str, path: tuple[str, ...]) -> Problem | None:
    if not name.strip():
        return Problem(path, "name must not be empty")
    if len(name) > 200:
        return Problem(path, f"name is {len(name)} characters long; the limit is 200")
    return None


async def create_project(ctx: Context, name: str, slug: str | None) -> Project:
    problems = []
    if problem := _name_problem(name, ("input", "name")):
        problems.append(problem)
    chosen = slug if slug is not None else slugify(name)
    if not chosen and slug is None:
        problems.append(Problem(("input", "slug"), "name has no letters or digits; give a slug"))
    elif problem_text := label_problem(chosen, "slug"):
        problems.append(Problem(("input", "slug"), problem_text))
    if problems:
        raise ValidationFailed(problems)
    async with mutate(ctx, "project.create") as change:
        require(ctx, Permission.PROJECT_WRITE)
        if await project_by_slug(change.session, ctx, chosen) is not None:
            raise Conflict(
                f"Project slug {chosen!r} is already taken in this account; choose another slug.",
                ("input", "slug"),
            )
        project = Project(
            id=new_id("project"), account_id=ctx.actor.account_id, name=name.strip(), slug=chosen
        )
        change.session.add(project)
        await change.session.flush()
        change.record(
            entity_type="project",
            entity_id=project.id,
            project_id=project.id,
            before=None,
            after=snapshot(project),
        )
        await change.emit(
            project.id, "project.created", project.id, {"name": project.name, "slug": chosen}
        )
    return project


async def update_project(ctx: Context, project_id: str, name: str | None) -> Project:
    if name is not None and (problem := _name_problem(name, ("input", "name"))):
        raise ValidationFailed([problem])
    async with mutate(ctx, "project.update") as change:
        project = await get_project(change.session, ctx, project_id, ("input", "id"))
        require(ctx, Permission.PROJECT_WRITE, project)
        before = snapshot(project)
        if name is not None:
            project.name = name.strip()
        await change.session.flush()
        change.record(
            entity_type="project",
            entity_id=project.id,
            project_id=project.id,
            before=before,
            after=snapshot(project),
        )
        await change.emit(project.id, "project.updated", project.id, {"name": project.name})
    return project


@dataclass(frozen=True, slots=True)
class LimitsInput:
    """Per-environment caps as people write them: ``cpu: "8"``, ``memory: "16Gi"``."""

    cpu: str | None = None
    memory: str | None = None
    egress_gib: int | None = None
    budget_monthly_usd: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ParsedLimits:
    cpu_millicores: int | None
    memory_mib: int | None
    egress_gib: int | None
    budget_cents: int | None


def parse_limits(limits: LimitsInput | None, path: tuple[str, ...]) -> ParsedLimits:
    if limits is None:
        return ParsedLimits(None, None, None, None)
    problems: list[Problem] = []
    cpu = memory = budget = None
    if limits.cpu is not None:
        try:
            cpu = cpu_millicores(limits.cpu)
        except QuantityError as exc:
            problems.append(Problem((*path, "cpu"), str(exc)))
    if limits.memory is not None:
        try:
            memory = max(1, byte_size(limits.memory) // MIB)
        except QuantityError as exc:
            problems.append(Problem((*path, "memory"), str(exc)))
    if limits.egress_gib is not None and limits.egress_gib < 0:
        problems.append(Problem((*path, "egressGib"), "egressGib must not be negative"))
    if limits.budget_monthly_usd is not None:
        try:
            cents = limits.budget_monthly_usd * 100
            if cents < 0 or cents != cents.to_integral_value():
                raise InvalidOperation
            budget = int(cents)
        except InvalidOperation:
            problems.append(
                Problem(
                    (*path, "budgetMonthlyUsd"),
                    f"budget {limits.budget_monthly_usd} must be a non-negative amount in "
                    "dollars with at most two decimals",
                )
            )
    if problems:
        raise ValidationFailed(problems)
    return ParsedLimits(cpu, memory, limits.egress_gib, budget)


def _apply_limits(env: Environment, limits: ParsedLimits, given: LimitsInput) -> None:
    if given.cpu is not None:
        env.cpu_limit_millicores = limits.cpu_millicores
    if given.memory is not None:
        env.memory_limit_mib = limits.memory_mib
    if given.egress_gib is not None:
        env.egress_limit_gib = limits.egress_gib
    if given.budget_monthly_usd is not None:
        env.budget_limit_cents = limits.budget_cents


def _region_problem(region: str) -> Problem | None:
    if text := label_problem(region, "region"):
        return Problem(("input", "region"), text)
    return None


async def create_environment(
    ctx: Context,
    project_id: str,
    name: str,
    region: str | None,
    limits: LimitsInput | None,
) -> Environment:
    problems = []
    if text := environment_problem(name):
        problems.append(Problem(("input", "name"), text))
    chosen_region = region or DEFAULT_REGION
    if problem := _region_problem(chosen_region):
        problems.append(problem)
    if problems:
        raise ValidationFailed(problems)
    parsed = parse_limits(limits, ("input", "limits"))
    async with mutate(ctx, "environment.create") as change:
        project = await get_project(change.session, ctx, project_id, ("input", "projectId"))
        require(ctx, Permission.ENVIRONMENT_WRITE, project)
        if limits is not None and limits.budget_monthly_usd is not None:
            require(ctx, Permission.BUDGETS, project)
        existing = await change.session.scalar(
            select(Environment.id).where(
                Environment.project_id == project.id, Environment.name == name
            )
        )
        if existing is not None:
            raise Conflict(
                f"Environment {name!r} already exists in project {project.slug!r}.",
                ("input", "name"),
                existing_id=existing,
            )
        env = Environment(
            id=new_id("environment"),
            project_id=project.id,
            name=name,
            region=chosen_region,
            policy_refs=[],
        )
        if limits is not None:
            _apply_limits(env, parsed, limits)
        change.session.add(env)
        await change.session.flush()
        change.record(
            entity_type="environment",
            entity_id=env.id,
            project_id=project.id,
            before=None,
            after=snapshot(env),
        )
        await change.emit(
            project.id, "environment.created", env.id, {"name": name, "region": chosen_region}
        )
    return env


async def update_environment(
    ctx: Context, environment_id: str, region: str | None, limits: LimitsInput | None
) -> Environment:
    if region is not None and (problem := _region_problem(region)):
        raise ValidationFailed([problem])
    parsed = parse_limits(limits, ("input", "limits"))
    async with mutate(ctx, "environment.update") as change:
        env, project = await get_environment(change.session, ctx, environment_id, ("input", "id"))
        require(ctx, Permission.ENVIRONMENT_WRITE, project)
        if limits is not None and limits.budget_monthly_usd is not None:
            require(ctx, Permission.BUDGETS, project)
        before = snapshot(env)
        if region is not None:
            env.region = region
        if limits is not None:
            _apply_limits(env, parsed, limits)
        await change.session.flush()
        change.record(
            entity_type="environment",
            entity_id=env.id,
            project_id=project.id,
            before=before,
            after=snapshot(env),
        )
        await change.emit(project.id, "environment.updated", env.id, {"name": env.name})
    return env


def visible_project_ids(actor: Actor) -> list[str] | None:
    """The IDs of the projects ``actor`` may see; None: every project of the account (an
    account member's, unless their token is limited to one project)."""
    if actor.account_role is not None and actor.token_project_id is None:
        return None
    ids = [actor.token_project_id] if actor.token_project_id else list(actor.project_roles)
    return [pid for pid in ids if pid is not None and actor.sees_project(pid)]


async def visible_projects(ctx: Context, first: int | None, after: str | None) -> Page[Project]:
    """The projects the caller may see, by slug: all of the account's for account members,
    otherwise those of their project memberships (or their token's one project)."""
    request = page_request(ctx.actor.account_id, first, after)
    actor = ctx.actor
    ids = visible_project_ids(actor)
    async with ctx.store.read() as session:
        if ids is None:
            return (await load_pages(session, PROJECTS_OF_ACCOUNT, [request]))[0]
        conditions = [Project.account_id == actor.account_id, Project.id.in_(ids)]
        if after is not None:
            (slug,) = decode_cursor(after, PROJECTS_OF_ACCOUNT.order)
            conditions.append(Project.slug > slug)
        rows = list(
            (
                await session.scalars(
                    select(Project)
                    .where(*conditions)
                    .order_by(Project.slug)
                    .limit(request.first + 1)
                )
            ).all()
        )
    return Page(
        spec=PROJECTS_OF_ACCOUNT,
        rows=rows[: request.first],
        has_next_page=len(rows) > request.first,
        has_previous_page=after is not None,
    )


async def count_visible_projects(ctx: Context) -> int:
    ids = visible_project_ids(ctx.actor)
    if ids is not None:
        return len(ids)
    async with ctx.store.read() as session:
        return (await count_children(session, PROJECTS_OF_ACCOUNT, [ctx.actor.account_id]))[0]
