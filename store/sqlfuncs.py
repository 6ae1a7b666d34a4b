"""SQL functions whose meaning must not depend on the backend.

SQLite's built-in ``lower()`` (and so SQLAlchemy's ``ilike``) folds only ASCII letters, while
PostgreSQL's folds every letter its UTF-8 locale knows. ``casefold(x)`` is ``lower(x)`` on
PostgreSQL and a Python-backed function on SQLite, so "any case" means the same on both.

``utc_day(t)`` is a timestamp's UTC calendar day as ``YYYY-MM-DD`` text. PostgreSQL would
otherwise take the day in the session's time zone; SQLite stores our timestamps as UTC text
already (see ``UTCDateTime``). Its SQL has no bound parameters, so the same expression can
appear in SELECT and GROUP BY.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction

SQLITE_CASEFOLD: Final = "enclii_casefold"


class casefold(GenericFunction[str]):
    type = String()
    name = "casefold"
    inherit_cache = True


@compiles(casefold)
def _casefold_default(element: casefold, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(casefold, "sqlite")
def _casefold_sqlite(element: casefold, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_CASEFOLD}({compiler.process(element.clauses, **kw)})"


class utc_day(GenericFunction[str]):
    type = String()
    name = "utc_day"
    inherit_cache = True


@compiles(utc_day)
def _utc_day_default(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"


def _fold(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """Install the Python side of the functions above on a new SQLite connection."""
    dbapi_connection.create_function(SQLITE_CASEFOLD, 1, _fold, deterministic=True)
