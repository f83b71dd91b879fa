"""The dashboard's SQL fragments for DuckDB (see :class:`dashboards.dialects.DialectSql`)."""

from __future__ import annotations

import math
from typing import Any

from cohortdb.cohorts.filter_sql import quote_identifier

MATERIALIZED = "materialized "


def identifier(name: str) -> str:
    return quote_identifier(name, "duckdb")


def text(expr: str) -> str:
    return f"cast({expr} as varchar)"


def length(expr: str) -> str:
    return f"len({expr})"


def as_integer(expr: str) -> str:
    return f"cast({expr} as bigint)"


def as_double(expr: str) -> str:
    return f"{expr}::double"


def count_if(condition: str) -> str:
    return f"count(*) filter (where {condition})"


def list_min(expr: str) -> str:
    return f"list_min({expr})"


def list_max(expr: str) -> str:
    return f"list_max({expr})"


def is_one_of(expr: str) -> str:
    return f"list_contains(?::varchar[], {text(expr)})"


def any_is_one_of(expr: str) -> str:
    return f"list_has_any(cast({expr} as varchar[]), ?::varchar[])"


def in_many(expr: str) -> str:
    return f"{expr} in (select unnest(?::varchar[]))"


def between(expr: str, lo: float | None, hi: float | None) -> tuple[str, list[Any]]:
    return f"({expr} >= ?::double and {expr} <= ?::double)", _ends(lo, hi)


def any_between(expr: str, lo: float | None, hi: float | None) -> tuple[str, list[Any]]:
    return f"len(list_filter({expr}, x -> x >= ?::double and x <= ?::double)) > 0", _ends(lo, hi)


def full_match(expr: str) -> str:
    return f"regexp_full_match({expr}, ?)"


def items(relation: str, column: str) -> str:
    return (f"(select unnest(case when len({column}) > 0 then cast({column} as varchar[]) "
            f"else [null::varchar] end) as v from {relation})")


def _ends(lo: float | None, hi: float | None) -> list[Any]:
    return [lo if lo is not None else -math.inf, hi if hi is not None else math.inf]
