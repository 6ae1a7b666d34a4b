"""Expected failures as data: union members sharing the ``Error`` interface."""

from __future__ import annotations

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
    if isinstance(failure, failures.Conflict):
        existing = strawberry.ID(failure.existing_id) if failure.existing_id else None
        return ConflictError(
            message=failure.message, code=failure.code, path=path, existing_id=existing
        )
    raise failure
