"""Scalars whose parsing differs from Strawberry's defaults."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.exceptions import StrawberryInputCoercionError


def parse_instant(value: str, name: str = "DateTime") -> datetime:
    """An ISO 8601 time with a zone. A time without one means different instants to
    different clients (and the store keeps only instants), so it is refused, not guessed."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f'{name} "{value}" is not an ISO 8601 time; use a form like "2026-11-27T09:00:00Z".'
        ) from None
    if parsed.utcoffset() is None:
        raise ValueError(f'{name} "{value}" has no time zone; add one, e.g. "{value}Z" for UTC.')
    return parsed


def _parse_value(value: object) -> datetime:
    if not isinstance(value, str):
        raise StrawberryInputCoercionError(
            f'DateTime must be an ISO 8601 string such as "2026-11-27T09:00:00Z", got {value!r}.'
        )
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise StrawberryInputCoercionError(str(exc)) from None


AwareDateTime = strawberry.scalar(
    name="DateTime",
    description="An instant: ISO 8601 date and time with a zone (e.g. 2026-11-27T09:00:00Z).",
    serialize=datetime.isoformat,
    parse_value=_parse_value,
)
