"""The SQL the dashboard writes that differs between engines: one module per dialect
(:mod:`.duckdb`, :mod:`.bigquery`), each with the same names, as :class:`DialectSql` lists them.

Everything is a fragment of text around the expressions it is given; a value a user
gives still travels as a ``?`` parameter, which the fragments that take one say.
"""

from __future__ import annotations

from typing import Any, Protocol

from cohortdb.warehouse.base import Dialect


class DialectSql(Protocol):
    """What each dialect module defines (a module satisfies it by its names)."""

    MATERIALIZED: str
    """Written before a CTE's body that should be computed once (empty where the engine decides)."""

    def identifier(self, name: str) -> str:
        """``name`` quoted as an identifier."""
        ...

    def text(self, expr: str) -> str:
        """``expr`` cast to text."""
        ...

    def length(self, expr: str) -> str:
        """The number of items of the list ``expr``."""
        ...

    def as_integer(self, expr: str) -> str:
        """``expr`` as a 64-bit integer."""
        ...

    def as_double(self, expr: str) -> str:
        """``expr`` as a double precision number."""
        ...

    def count_if(self, condition: str) -> str:
        """The aggregate counting rows where ``condition`` holds."""
        ...

    def list_min(self, expr: str) -> str:
        """The smallest item of the list ``expr`` (NULL when it has none)."""
        ...

    def list_max(self, expr: str) -> str:
        """The largest item of the list ``expr`` (NULL when it has none)."""
        ...

    def is_one_of(self, expr: str) -> str:
        """``expr``'s text is one of a parameter's list of texts (one ``?``)."""
        ...

    def any_is_one_of(self, expr: str) -> str:
        """Some item of the text list ``expr`` is one of a parameter's list of texts (one ``?``)."""
        ...

    def in_many(self, expr: str) -> str:
        """``expr`` is one of a long parameter list of texts (one ``?``), as a semi-join."""
        ...

    def between(self, expr: str, lo: float | None, hi: float | None) -> tuple[str, list[Any]]:
        """``lo <= expr <= hi`` (an end that is None is open), and its parameters."""
        ...

    def any_between(self, expr: str, lo: float | None, hi: float | None) -> tuple[str, list[Any]]:
        """Some item of the number list ``expr`` lies in ``lo..hi``, and its parameters."""
        ...

    def full_match(self, expr: str) -> str:
        """``expr`` matches a parameter's regular expression (RE2, anchored by the caller; one ``?``)."""
        ...

    def items(self, relation: str, column: str) -> str:
        """A subquery of ``v``: the text items of list ``column`` of every row of ``relation``,
        one NULL for a row whose list is empty or NULL."""
        ...


def sql_of(dialect: Dialect) -> DialectSql:
    """The module of ``dialect``."""
    if dialect == "bigquery":
        from dashboards.dialects import bigquery

        return bigquery
    from dashboards.dialects import duckdb

    return duckdb
