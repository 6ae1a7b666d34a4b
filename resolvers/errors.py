"""Expected failures of mutations and queries, as exceptions resolvers raise.

Raising inside a write transaction rolls it back, so a failure changes nothing. The GraphQL
layer turns each one into a union member sharing the ``Error`` interface (message, code,
path); nothing here knows about GraphQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason input was refused: where (a path into the input) and why."""

    path: tuple[str, ...]
    message: str
    line: int | None = None


class Failure(Exception):
    code: ClassVar[str] = "FAILED"

    def __init__(self, message: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


class ValidationFailed(Failure):
    code = "VALIDATION_FAILED"

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0]
        if len(problems) == 1:
            message = first.message
        else:
            message = f"{first.message} (and {len(problems) - 1} more problems)"
        super().__init__(message, first.path)
        self.problems = problems

    @classmethod
    def one(cls, path: tuple[str, ...], message: str) -> ValidationFailed:
        return cls([Problem(path, message)])


class NotFound(Failure):
    code = "NOT_FOUND"


class Conflict(Failure):
    code = "CONFLICT"

    def __init__(
        self, message: str, path: tuple[str, ...] = (), existing_id: str | None = None
    ) -> None:
        super().__init__(message, path)
        self.existing_id = existing_id


@dataclass(frozen=True, slots=True)
class SpentObjective:
    """One SLO objective's error budget, as the freeze reports it."""

    name: str  # availability or latency
    objective_percent: float
    bad: int
    allowed: float
    spent: float  # fraction of the budget: 1.0 is all of it


class Frozen(Failure):
    """Deploys of a service are frozen: its error budget is spent (Appendix D)."""

    code = "FROZEN"

    def __init__(
        self,
        message: str,
        path: tuple[str, ...],
        *,
        objectives: list[SpentObjective],
        window_days: int,
        budget_spent: float,
        frozen_since: datetime | None,
    ) -> None:
        super().__init__(message, path)
        self.objectives = objectives
        self.window_days = window_days
        self.budget_spent = budget_spent
        self.frozen_since = frozen_since


class BadRequest(Failure):
    """Malformed arguments of a query (a bad cursor, ``first`` out of range): raised as a
    top-level GraphQL error with code BAD_USER_INPUT, since queries have no result union."""

    code = "BAD_USER_INPUT"


class Unauthenticated(Exception):
    """No identity, or one that cannot be trusted. ``reason`` is a stable code
    (TOKEN_MISSING, TOKEN_MALFORMED, TOKEN_EXPIRED, TOKEN_AUDIENCE, TOKEN_ISSUER,
    TOKEN_SIGNATURE, TOKEN_UNKNOWN, TOKEN_REVOKED, …) and ``message`` says what to do."""

    code = "UNAUTHENTICATED"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Forbidden(Failure):
    """The identity is known but its role (or token) does not allow this. Raised as a
    top-level error; a denied mutation is also recorded in the audit trail."""

    code = "FORBIDDEN"

    def __init__(self, message: str, permission: str, project_id: str | None = None) -> None:
        super().__init__(message)
        self.permission = permission
        self.project_id = project_id


class RateLimited(Exception):
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
