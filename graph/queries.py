"""The Query root: the viewer, node lookups, projects, services by name, history."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from graph.context import Info
from graph.types.base import Connection, Node, related
from graph.types.capabilities import Capabilities
from graph.types.delivery import DeliveryStats
from graph.types.nodes import (
    Account,
    AuditEvent,
    Deployment,
    Project,
    Runtime,
    Service,
    User,
    node_from_row,
    visible_projects_connection,
)
from graph.types.traffic import TrafficSummary
from resolvers import audit, lookup
from resolvers import delivery as delivery_resolvers
from resolvers import deployments as deployment_resolvers
from resolvers import events as event_resolvers
from resolvers import logs as log_resolvers
from resolvers import metrics as metric_resolvers
from resolvers.errors import BadRequest
from resolvers.pagination import MAX_PAGE
from store import models
from store.events import EventRecord
from store.logs import LogRecord


@strawberry.type(description="One entry of a project's activity (the durable event log).")
class Event:
    sequence: int = strawberry.field(
        description="Position in the project's stream; resume after it."
    )
    type: str
    entity_id: strawberry.ID | None
    actor_id: str | None
    payload: JSON
    created_at: datetime

    @classmethod
    def from_record(cls, record: EventRecord) -> Event:
        return cls(
            sequence=record.seq,
            type=record.type,
            entity_id=strawberry.ID(record.entity_id) if record.entity_id else None,
            actor_id=record.actor_id,
            payload=JSON(record.payload),
            created_at=record.created_at,
        )


@strawberry.type(description="One line a build or a replica wrote.")
class LogLine:
    sequence: int = strawberry.field(description="Position in the service's log; resume after it.")
    ts: datetime
    level: str = strawberry.field(description="debug, info, warn or error.")
    message: str
    fields: JSON = strawberry.field(description="The other keys of a JSON line.")
    source: str = strawberry.field(description="build, replica-0, replica-1, …")
    stream: str = strawberry.field(description="stdout, stderr or build.")
    release_id: strawberry.ID | None

    @classmethod
    def from_record(cls, record: LogRecord) -> LogLine:
        return cls(
            sequence=record.seq,
            ts=record.ts,
            level=record.level,
            message=record.message,
            fields=JSON(record.fields),
            source=record.source,
            stream=record.stream,
            release_id=strawberry.ID(record.release_id) if record.release_id else None,
        )


@strawberry.type(description="Log lines stored together, oldest first.")
class LogBatch:
    lines: list[LogLine]
    cursor: int = strawberry.field(
        description="The last line's sequence: pass as `after` to resume from here."
    )

    @classmethod
    def from_records(cls, records: list[LogRecord]) -> LogBatch:
        return cls(lines=[LogLine.from_record(r) for r in records], cursor=records[-1].seq)


@strawberry.type
class LogPage:
    lines: list[LogLine]
    has_more: bool
    cursor: int | None = strawberry.field(
        description="The last line's sequence: pass as `after` to page on, or to the logs "
        "subscription to follow from here."
    )


@strawberry.type
class EventPage:
    events: list[Event]
    has_more: bool


@strawberry.input(description="Every field narrows the result; all are optional.")
class AuditEventFilter:
    project_id: strawberry.ID | None = None
    actor_id: str | None = None
    action: str | None = strawberry.field(
        default=None, description="Exact (service.apply), or a prefix ending in '.' (service.)."
    )
    entity_id: strawberry.ID | None = None
    outcome: models.AuditOutcome | None = None
    since: datetime | None = None
    until: datetime | None = None

    def to_resolver(self) -> audit.AuditFilter:
        return audit.AuditFilter(
            project_id=str(self.project_id) if self.project_id else None,
            actor_id=self.actor_id,
            action=self.action,
            entity_id=str(self.entity_id) if self.entity_id else None,
            outcome=self.outcome,
            since=self.since,
            until=self.until,
        )


@strawberry.type
class AuditEventPage:
    nodes: list[AuditEvent]
    has_next_page: bool
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")


@strawberry.type
class AuditVerification:
    ok: bool
    checked: int = strawberry.field(description="Events whose links were verified.")
    broken_at_sequence: int | None
    problem: str | None


@strawberry.type(description="Who is asking.")
class Viewer:
    _user_id: strawberry.Private[str]
    _account_id: strawberry.Private[str]

    @strawberry.field(graphql_type=User)
    def user(self, info: Info) -> Awaitable[User | None] | None:
        return related(info, models.User, self._user_id, User.from_row)

    @strawberry.field(graphql_type=Account)
    def account(self, info: Info) -> Awaitable[Account | None] | None:
        return related(info, models.Account, self._account_id, Account.from_row)

    @strawberry.field(
        description="Your role on the whole account; null when you only have roles on "
        "projects (see Project.viewerRole)."
    )
    def role(self, info: Info) -> models.Role | None:
        return info.context.ctx.actor.role_on(None)

    @strawberry.field(
        description="What you may do on the account itself (creating projects, managing "
        "account-wide roles, reading its audit trail), with this token."
    )
    def can(self, info: Info) -> Capabilities:
        return Capabilities.of(info.context.ctx.actor, None)


async def resolve_node(info: Info, node_id: str) -> Node | None:
    async with info.context.ctx.store.read() as session:
        row = await lookup.find_node(session, info.context.ctx, node_id)
    return node_from_row(row) if row is not None else None


@strawberry.type
class ReleaseTraffic:
    release_id: strawberry.ID
    traffic: TrafficSummary


@strawberry.type(description="A service's request metrics over a window, overall and per release.")
class ServiceMetrics:
    service_id: strawberry.ID
    window_seconds: float = strawberry.field(description="The span the figures cover.")
    overall: TrafficSummary
    releases: list[ReleaseTraffic]


@strawberry.type
class Query:
    @strawberry.field
    def viewer(self, info: Info) -> Viewer:
        actor = info.context.ctx.actor
        return Viewer(_user_id=actor.id, _account_id=actor.account_id)

    @strawberry.field(description="Anything by its ID (rel_…, svc_…); null if not found.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await resolve_node(info, str(id))

    @strawberry.field(description=f"Up to {MAX_PAGE} things by ID, in order; null where missing.")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        if len(ids) > MAX_PAGE:
            raise BadRequest(f"ids takes at most {MAX_PAGE} IDs, got {len(ids)}", ("ids",))
        return [await resolve_node(info, str(i)) for i in ids]

    @strawberry.field(description="The projects you may see, by slug.")
    async def projects(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Project]:
        return await visible_projects_connection(info, first, after)

    @strawberry.field(description="A project by ID or slug.")
    async def project(
        self, info: Info, id: strawberry.ID | None = None, slug: str | None = None
    ) -> Project | None:
        if (id is None) == (slug is None):
            raise BadRequest("give exactly one of id or slug", ("id",))
        ctx = info.context.ctx
        async with ctx.store.read() as session:
            if slug is not None:
                row = await lookup.project_by_slug(session, ctx, slug)
            else:
                found = await lookup.find_node(session, ctx, str(id))
                row = found if isinstance(found, models.Project) else None
        return Project.from_row(row) if row else None

    @strawberry.field(description="A live service by ID, or by project slug, environment and name.")
    async def service(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        project: str | None = None,
        environment: str | None = None,
        name: str | None = None,
    ) -> Service | None:
        ctx = info.context.ctx
        by_name = (project, environment, name)
        if id is not None and any(v is not None for v in by_name):
            raise BadRequest("give either id, or project, environment and name", ("id",))
        async with ctx.store.read() as session:
            if id is not None:
                found = await lookup.find_node(session, ctx, str(id))
                row = (
                    found
                    if isinstance(found, models.Service) and found.deleted_at is None
                    else None
                )
            else:
                if project is None or environment is None or name is None:
                    raise BadRequest(
                        "give either id, or project, environment and name", ("project",)
                    )
                row = await lookup.service_by_path(session, ctx, project, environment, name)
        return Service.from_row(row) if row else None

    @strawberry.field(
        description="The audit trail, newest first, filtered. Needs the admin role (on the "
        "project, when filtering by one)."
    )
    async def audit_events(
        self,
        info: Info,
        filter: AuditEventFilter | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> AuditEventPage:
        where = filter.to_resolver() if filter is not None else audit.AuditFilter()
        page = await audit.audit_page(info.context.ctx, where, first, after)
        return AuditEventPage(
            nodes=[AuditEvent.from_row(row) for row in page.rows],
            has_next_page=page.has_next_page,
            end_cursor=page.end_cursor,
        )

    @strawberry.field(
        description="Walk the account's audit chain and report the first event that was "
        "changed, removed or inserted after it was written."
    )
    async def verify_audit(self, info: Info) -> AuditVerification:
        report = await audit.verify(info.context.ctx)
        return AuditVerification(
            ok=report.ok,
            checked=report.checked,
            broken_at_sequence=report.broken_at,
            problem=report.problem,
        )

    @strawberry.field(
        description="A service's logs: the newest `limit` lines, or with `after` (a sequence) "
        "or `since` the lines from there on, oldest first. `grep` keeps lines whose message "
        "contains it (any case)."
    )
    async def logs(
        self,
        info: Info,
        service_id: strawberry.ID,
        limit: int = 100,
        after: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        grep: str | None = None,
        release_id: strawberry.ID | None = None,
    ) -> LogPage:
        page = await log_resolvers.log_page(
            info.context.ctx,
            str(service_id),
            limit=limit,
            after=after,
            since=since,
            until=until,
            grep=grep,
            release_id=str(release_id) if release_id else None,
        )
        return LogPage(
            lines=[LogLine.from_record(r) for r in page.lines],
            has_more=page.has_more,
            cursor=page.cursor,
        )

    @strawberry.field(description="A deployment by its ID.")
    async def deployment(self, info: Info, id: strawberry.ID) -> Deployment:
        row, _project = await deployment_resolvers.get_deployment(info.context.ctx, str(id))
        return Deployment.from_row(row)

    @strawberry.field(
        description="What runs of a service now: every release with replicas (serving, "
        "rolling out, or warm for a rollback), the one taking most traffic first."
    )
    async def runtime(self, info: Info, service_id: strawberry.ID) -> list[Runtime]:
        rows = await deployment_resolvers.runtimes_of(info.context.ctx, str(service_id))
        return [Runtime.from_row(r) for r in rows]

    @strawberry.field(
        description="Requests per second, 5xx rate and latency percentiles of a service "
        "through the router over the last `window` seconds (10 to 604800), overall and per "
        "release."
    )
    async def metrics(
        self, info: Info, service_id: strawberry.ID, window: int = 300
    ) -> ServiceMetrics:
        found = await metric_resolvers.service_metrics(info.context.ctx, str(service_id), window)
        return ServiceMetrics(
            service_id=strawberry.ID(found.service_id),
            window_seconds=found.overall.window_s,
            overall=TrafficSummary.from_summary(found.overall),
            releases=[
                ReleaseTraffic(
                    release_id=strawberry.ID(release_id),
                    traffic=TrafficSummary.from_summary(summary),
                )
                for release_id, summary in found.by_release.items()
            ],
        )

    @strawberry.field(
        description="Deployments, successes, failures and rollbacks per UTC day over the last "
        f"`days` (1 to {delivery_resolvers.MAX_DAYS}, today included), in one project or in "
        "every project you may see."
    )
    async def delivery_stats(
        self, info: Info, project_id: strawberry.ID | None = None, days: int = 14
    ) -> DeliveryStats:
        stats = await delivery_resolvers.delivery_stats(
            info.context.ctx, str(project_id) if project_id is not None else None, days
        )
        return DeliveryStats.from_stats(stats)

    @strawberry.field(
        description="A page of a project's activity: oldest first after a sequence, or "
        "newest first before one (default: the newest)."
    )
    async def project_events(
        self,
        info: Info,
        project_id: strawberry.ID,
        after: int | None = None,
        before: int | None = None,
        first: int = 50,
    ) -> EventPage:
        page = await event_resolvers.event_history(
            info.context.ctx, str(project_id), after=after, before=before, first=first
        )
        return EventPage(events=[Event.from_record(r) for r in page.events], has_more=page.has_more)
