"""JSON columns are read with orjson, except what orjson would not read as json does."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import TextClause, text

from store.db import Store
from store.models.base import JSONType

CASES = [
    pytest.param('{"a": [1, 2.5, "x", null, true]}', {"a": [1, 2.5, "x", None, True]}, id="plain"),
    # orjson reads an integer beyond 64 bits as a float and loses digits.
    pytest.param(
        '{"big": 123456789012345678901234567890}',
        {"big": 123456789012345678901234567890},
        id="beyond-64-bits",
    ),
    pytest.param(
        '{"edge": 9223372036854775807, "below": -9223372036854775808}',
        {"edge": 9223372036854775807, "below": -9223372036854775808},
        id="64-bit-edges",
    ),
    pytest.param('{"text": "déjà vu ✓"}', {"text": "déjà vu ✓"}, id="unicode"),
]


def json_value(store: Store, stored: str) -> TextClause:
    """``stored`` as the database hands a JSON column back: jsonb on PostgreSQL, text that
    SQLAlchemy's JSON type decodes on SQLite."""
    sql = "SELECT CAST(:v AS jsonb) AS j" if store.backend == "postgresql" else "SELECT :v AS j"
    return text(sql).bindparams(v=stored).columns(j=JSONType)  # type: ignore[return-value]


@pytest.mark.parametrize(("stored", "expected"), CASES)
async def test_json_columns_read_exactly(store: Store, stored: str, expected: Any) -> None:
    async with store.read() as session:
        value = (await session.execute(json_value(store, stored))).scalar_one()
    assert value == expected
    assert [type(v) for v in value.values()] == [type(v) for v in expected.values()]


async def test_nan_stored_by_json_still_reads(store: Store) -> None:
    if store.backend == "postgresql":
        pytest.skip("PostgreSQL refuses NaN in json; only SQLite can hold it")
    async with store.read() as session:
        value = (await session.execute(json_value(store, '{"x": NaN}'))).scalar_one()
    assert value["x"] != value["x"]  # NaN
