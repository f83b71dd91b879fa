"""The dashboard's SQL fragments for BigQuery, in GoogleSQL (see
:class:`dashboards.dialects.DialectSql`).

List columns here are ``ARRAY<STRING>`` or arrays of numbers, as the marts define them;
BigQuery has no NULL array (a NULL list reads as ``[]``), so emptiness is the length.
An open range end is left out of the SQL rather than sent as an infinite parameter.
"""

from __future__ import annotations

from typing import Any

from cohortdb.cohorts.filter_sql import quote_identifier

MATERIALIZED = ""


def identifier(name: str) -> str:
    return quote_identifier(name, "bigquery")


def text(expr: str) -> str:
    return f"cast({expr} as string)"


def length(expr: str) -> str:
    return f"array_length({expr})"


def as_integer(expr: str) -> str:
    return f"cast({expr} as int64)"


def as_double(expr: str) -> str:
    return f"cast({expr} as float64)"


def count_if(condition: str) -> str:
    return f"countif({condition})"


def list_min(expr: str) -> str:
    return f"(select min(x) from unnest({expr}) as x)"


def list_max(expr: str) -> str:
    return f"(select max(x) from unnest({expr}) as x)"


def is_one_of(expr: str) -> str:
    return f"{text(expr)} in unnest(?)"


def any_is_one_of(expr: str) -> str:
    return f"exists(select 1 from unnest({expr}) as x where x in unnest(?))"


def in_many(expr: str) -> str:
    return f"{expr} in unnest(?)"


def between(expr: str, lo: float | None, hi: float | None) -> tuple[str, list[Any]]:
    ends, params = _ends(expr, lo, hi)
    return f"({ends or expr + ' is not null'})", params


def any_between(expr: str, lo: float | None, hi: float | None) -> tuple[str, list[Any]]:
    ends, params = _ends("x", lo, hi)
    return f"exists(select 1 from unnest({expr}) as x where {ends or 'x is not null'})", params


def full_match(expr: str) -> str:
    return f"regexp_contains({expr}, ?)"


def items(relation: str, column: str) -> str:
    return f"(select v from {relation} left join unnest({relation}.{column}) as v)"


def _ends(expr: str, lo: float | None, hi: float | None) -> tuple[str, list[Any]]:
    """``expr >= ? and expr <= ?`` with the ends that are given, and their parameters."""
    parts: list[str] = []
    params: list[Any] = []
    if lo is not None:
        parts.append(f"{expr} >= ?")
        params.append(float(lo))
    if hi is not None:
        parts.append(f"{expr} <= ?")
        params.append(float(hi))
    return " and ".join(parts), params
