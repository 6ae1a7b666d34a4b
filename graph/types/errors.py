"""Expected failures as data: union members sharing the ``Error`` interface."""

from __future__ import annotations

from datetime import datetime

import strawberry

from graph.context import Info
from graph.types.base import Node
from resolvers import errors as failures


@strawberry.interface(description="A failure the caller can act on: what, a code, and where.")
class Error:
    message: str
    code: str
    path: list[str] = strawberry.field(description="Where in the input the problem is.")


@strawberry.type(description="One reason input was refused.")
class Problem:
    path: list[str]
    message: str
    line: int | None = strawberry.field(description="Line in the submitted YAML, if any.")


@strawberry.type(description="The input was refused; nothing was changed.")
class ValidationError(Error):
    problems: list[Problem]


@strawberry.type(description="Something the input names does not exist (or is not yours).")
class NotFoundError(Error):
    pass


@strawberry.type(description="The change collides with something that exists.")
class ConflictError(Error):
    existing_id: strawberry.ID | None

    @strawberry.field(description="The thing in the way, when there is one.")
    async def existing(self, info: Info) -> Node | None:
        if self.existing_id is None:
            return None
        from graph.queries import resolve_node

        return await resolve_node(info, str(self.existing_id))


@strawberry.type(description="One SLO objective whose error budget the freeze reports.")
class SpentObjective:
    name: str = strawberry.field(description="availability or latency.")
    objective_percent: float
    bad: int = strawberry.field(description="Requests that missed it in the window.")
    allowed: float = strawberry.field(description="Bad requests the budget allows.")
    budget_spent: float = strawberry.field(description="Share of the budget spent (1 = all).")


@strawberry.type(
    description="Deploys of the service are frozen: its error budget is spent. Only a canary "
    "deploy marked as a fix (strategy CANARY, fix: true) may go out; rollbacks always may."
)
class FrozenError(Error):
    window_days: int
    budget_spent: float = strawberry.field(description="The most spent objective's share.")
    frozen_since: datetime | None
    objectives: list[SpentObjective]


def error_from(failure: failures.Failure) -> Error:
    path = list(failure.path)
    if isinstance(failure, failures.ValidationFailed):
        return ValidationError(
            message=failure.message,
            code=failure.code,
            path=path,
            problems=[
                Problem(path=list(p.path), message=p.message, line=p.line) for p in failure.problems
            ],
        )
    if isinstance(failure, failures.NotFound):
        return NotFoundError(message=failure.message, code=failure.code, path=path)
    if isinstance(failure, failures.Frozen):
        return FrozenError(
            message=failure.message,
            code=failure.code,
            path=path,
            window_days=failure.window_days,
            budget_spent=failure.budget_spent,
            frozen_since=failure.frozen_since,
            objectives=[
                SpentObjective(
                    name=o.name,
                    objective_percent=o.objective_percent,
                    bad=o.bad,
                    allowed=o.allowed,
                    budget_spent=o.spent,
                )
                for o in failure.objectives
            ],
        )
    if isinstance(failure, failures.Conflict):
        existing = strawberry.ID(failure.existing_id) if failure.existing_id else None
        return ConflictError(
            message=failure.message, code=failure.code, path=path, existing_id=existing
        )
    raise failure
