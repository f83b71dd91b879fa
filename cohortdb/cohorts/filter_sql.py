"""Guppy filter JSON → one SQL boolean expression (pure: no I/O).

The one translation of guppy filters (their semantics: docs/architecture.md),
used by ``cohortdb cohort``, the dbt cohort models, the Python API and the
dashboard::

    where = filter_to_sql(filter_, columns, dialect="duckdb", relation_alias="g")
    sql = f"select * from raw.guppy_imaging_study as g where {where}"

``columns`` maps each guppy field of the relation (a ``raw.guppy_<index>``
table) to its Arrow type, as in the lake Parquet schema or DuckDB's Arrow
output (:func:`guppy_columns` builds it from a schema and drops ``_commons``,
``_ingested_at`` and ``_record``). The types play the role of the
Elasticsearch mapping:

* string and bool → ``keyword``: exact, case-sensitive comparison of text;
  numbers and booleans given as filter values are compared by their keyword
  text (``28``, ``true``), as guppy does (it re-serialises the JSON);
* integers, floats, decimals → numeric;
* struct, or list of structs → nested (only usable through ``nested``);
* a list of any of these is multi-valued: a clause matches when any element
  satisfies it, each clause on its own; ``null``, ``[]`` and lists of nulls
  are "no data".

Semantics, as guppy 2025.06 (``src/server/es/filter.js``) on Elasticsearch:

* ``AND`` / ``OR`` (any case) at any depth; an empty filter and ``AND``/``OR``
  over ``[]`` select everything (``true``);
* ``=``/``eq``/``EQ`` and ``in``/``IN``; ``"no data"`` (as the value, or in
  the list) means the field is missing;
* keyword ``!=`` (a value or a list) is ``must_not term``: records missing the
  field match; ``"no data"`` in it requires the field to be present;
  numeric ``!=`` is ``> v OR < v``: records missing the field don't match;
* ``>``, ``>=``, ``<``, ``<=`` (and ``gt``/``GT``, ``gte``, ``lt``, ``lte``)
  on numeric fields only;
* ``{"nested": {"path": "p", <one clause>}}``: the clause must hold for one
  single item of ``p`` (``a.b`` walks nested levels); field names inside are
  relative to the path; a nested ``nested`` may give its path in full (as
  Elasticsearch wants: ``a.b`` inside ``a``) or relative (``b``). A dotted field
  name outside ``nested`` is an error, as in guppy;
* ``{"search": {"keyword": k, "fields": [...]}}``: real guppy runs
  ``multi_match`` on the ``<field>.analyzed`` sub-fields, which Tube indexes
  with an ``ngram`` tokenizer (2–20 characters, letters and digits, lowercased)
  and searches with a ``keyword`` tokenizer (lowercased). So a record matches
  when the lowercased keyword is a substring of the lowercased text of a named
  field's value — provided the keyword is made of letters and digits only and
  at most 20 long (otherwise it is no n-gram and nothing matches); a keyword
  shorter than 2 is an error. This is the issue's "case-insensitive
  substring", made exact; not the tokenised match of an ``analyzed`` text
  field (which would not find ``hest`` in ``CHEST``). Without ``fields`` every
  keyword field of the scope is searched; numeric and nested fields have no
  ``.analyzed`` sub-field, so naming one matches nothing.

Anything else — unknown field or operator, range on a keyword field, a value
of the wrong kind — raises one :class:`~ingest.errors.UserError` whose
one-line message names the bad part, e.g.
``filter.AND[1].nested.>=.midrc_mRALE_score``. Values are SQL literals
(escaped for the dialect) and field names quoted identifiers, so the output
is safe to splice into a query. Every generated predicate is two-valued
(never NULL), so ``NOT`` composes as Elasticsearch's ``must_not``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from cohortdb.warehouse.base import Dialect
from ingest.errors import UserError
from ingest.sources.guppy.filter_file import NO_DATA, RANGE_OPS, filter_problem
from ingest.sources.guppy.flatten import METADATA_COLUMNS

Predicate = Callable[[str], str]

SEARCH_MAX_GRAM = 20  # Tube's ngram tokenizer: min_gram 2, max_gram 20
_RANGE_SQL = {">": ">", "gt": ">", "GT": ">", ">=": ">=", "gte": ">=", "GTE": ">=",
              "<": "<", "lt": "<", "LT": "<", "<=": "<=", "lte": "<=", "LTE": "<="}
_EXACT_INT = 2**53


def filter_to_sql(
    filter_: Mapping[str, Any] | None,
    columns: Mapping[str, pa.DataType],
    dialect: Dialect = "duckdb",
    relation_alias: str | None = None,
) -> str:
    """A SQL boolean expression selecting the rows that satisfy ``filter_``.

    Args:
        filter_: a guppy filter (parsed JSON); ``None`` or ``{}`` selects all.
        columns: the relation's guppy fields → Arrow types (see the module
            docstring; :func:`guppy_columns` builds it from a schema).
        dialect: ``duckdb`` or ``bigquery``.
        relation_alias: qualify top-level columns with it (``g."sex"``).

    Returns:
        An expression such as ``("sex" = 'Male') and (...)``; ``true`` for an
        empty filter. It is never NULL.

    Raises:
        UserError: the filter is invalid for these columns; the one-line
            message names the bad part.
    """
    if dialect not in _DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; use duckdb or bigquery")
    problem = filter_problem(filter_ if filter_ is not None else {})
    if problem:
        raise UserError(f"invalid guppy filter: {problem}")
    sql = _DIALECTS[dialect]
    top = _Scope(columns, "", lambda name: sql.column(relation_alias, name))
    return _Translator(sql).clause(filter_ or {}, top, "filter")


def guppy_columns(schema: pa.Schema) -> dict[str, pa.DataType]:
    """The guppy fields of a ``raw.guppy_<index>`` schema: every column but the metadata."""
    return {f.name: f.type for f in schema if f.name not in METADATA_COLUMNS}


def quote_identifier(name: str, dialect: Dialect = "duckdb") -> str:
    """``name`` as a quoted identifier: double quotes (DuckDB) or backticks (BigQuery)."""
    return _DIALECTS[dialect].identifier(name)


# --- dialects: the only place DuckDB and BigQuery differ -------------------------------


# GoogleSQL's named escapes, written in preference to \xNN: the BigQuery emulator
# (bqemulator 1.4) reads only these, and keeps \x0a as four characters.
_NAMED_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                  "\t": "\\t", "\v": "\\v", "\\": "\\\\", "'": "\\'"}


def _googlesql_char(c: str) -> str:
    """``c`` as it is written inside a GoogleSQL quoted string."""
    if c in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[c]
    if ord(c) < 0x20 or c == "\x7f":
        return f"\\x{ord(c):02x}"
    return c


@dataclass(frozen=True)
class _Sql:
    name: Dialect

    def identifier(self, name: str) -> str:
        if self.name == "bigquery":
            return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
        return '"' + name.replace('"', '""') + '"'

    def string(self, text: str) -> str:
        if self.name == "bigquery":  # GoogleSQL: backslash escapes, no quote doubling
            return "'" + "".join(map(_googlesql_char, text)) + "'"
        return "'" + text.replace("'", "''") + "'"

    def column(self, alias: str | None, name: str) -> str:
        return f"{self.identifier(alias)}.{self.identifier(name)}" if alias \
            else self.identifier(name)

    def field(self, struct: str, name: str) -> str:
        return f"{struct}.{self.identifier(name)}"

    def any_item(self, array: str, variable: str, condition: str) -> str:
        """Whether some item ``variable`` of ``array`` satisfies ``condition`` (never NULL)."""
        if self.name == "bigquery":
            return f"exists(select 1 from unnest({array}) as {variable} where {condition})"
        return f"coalesce(len(list_filter({array}, lambda {variable}: {condition})) > 0, false)"

    def any_in(self, array: str, literals: list[str]) -> str | None:
        """Fast path: some item of a list of scalars is one of ``literals`` (None: no fast path)."""
        if self.name == "duckdb":
            return f"coalesce(list_has_any({array}, [{', '.join(literals)}]), false)"
        return None


_DIALECTS = {"duckdb": _Sql("duckdb"), "bigquery": _Sql("bigquery")}


# --- the translation ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    """The fields visible at one level: the relation's columns or a nested item's fields."""

    columns: Mapping[str, pa.DataType]
    path: str  # dotted nested path from the top ("" at the top), for messages
    ref: Callable[[str], str]  # field name → SQL expression


def _base(data_type: pa.DataType) -> pa.DataType:
    while _is_list(data_type):
        data_type = data_type.value_type
    return data_type


def _is_list(data_type: pa.DataType) -> bool:
    return pa.types.is_list(data_type) or pa.types.is_large_list(data_type) \
        or pa.types.is_fixed_size_list(data_type)


def _kind(data_type: pa.DataType) -> str | None:
    base = _base(data_type)
    if pa.types.is_string(base) or pa.types.is_large_string(base) or \
            pa.types.is_string_view(base) or pa.types.is_boolean(base):
        return "keyword"
    if pa.types.is_integer(base) or pa.types.is_floating(base) or pa.types.is_decimal(base):
        return "numeric"
    if pa.types.is_struct(base):
        return "nested"
    return None


def _nested_parents(columns: Mapping[str, pa.DataType], field: str, path: str) -> list[str]:
    """The full dotted paths of the nested fields, at any depth below ``columns``, whose
    items have a field named ``field`` (sorted; ``path``: where ``columns`` sit)."""
    found: list[str] = []
    for name, data_type in columns.items():
        base = _base(data_type)
        if not pa.types.is_struct(base):
            continue
        item_path = f"{path}.{name}" if path else name
        item_fields = {f.name: f.type for f in base}
        if field in item_fields:
            found.append(item_path)
        found.extend(_nested_parents(item_fields, field, item_path))
    return sorted(found)


def _text(value: Any) -> str:
    """A filter value's keyword text, as guppy (Node) re-serialises it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Translator:
    def __init__(self, sql: _Sql) -> None:
        self.sql = sql
        self.variables = 0

    def variable(self) -> str:
        self.variables += 1
        return f"_gf{self.variables}"

    def any_value(self, expr: str, data_type: pa.DataType, test: Predicate) -> str:
        """Some (non-null) value of ``expr`` — a scalar, or any element of a list — passes."""
        if _is_list(data_type):
            variable = self.variable()
            return self.sql.any_item(
                expr, variable, self.any_value(variable, data_type.value_type, test))
        return f"coalesce({test(expr)}, false)"

    def has_data(self, expr: str, data_type: pa.DataType) -> str:
        return self.any_value(expr, data_type, lambda value: f"{value} is not null")

    # one clause ---------------------------------------------------------------------------

    def clause(self, node: Mapping[str, Any], scope: _Scope, where: str) -> str:
        if not node:
            return "true"
        op, body = next(iter(node.items()))
        lower = op.lower()
        if lower in ("and", "or"):
            parts = [self.clause(child, scope, f"{where}.{op}[{i}]")
                     for i, child in enumerate(body)]
            if not parts:
                return "true"
            return f" {lower} ".join(f"({part})" for part in parts)
        if lower == "nested":
            return self.nested(body, scope, f"{where}.{op}")
        if lower == "search":
            return self.search(body, scope, f"{where}.{op}")
        field, value = next(iter(body.items()))
        return self.leaf(op, field, value, scope, f"{where}.{op}.{field}")

    def field_type(self, field: str, scope: _Scope, where: str) -> pa.DataType:
        if field in scope.columns:
            return scope.columns[field]
        parents = _nested_parents(scope.columns, field, scope.path)
        if parents:
            paths = " or ".join(repr(p) for p in parents)
            raise UserError(f"invalid guppy filter: {where}: {field!r} is a field of nested {paths}: "
                            f"use {{\"nested\": {{\"path\": \"{parents[0]}\", ...}}}}")
        known = sorted(scope.columns)
        hint = ""
        if "." in field and field.split(".")[0] in scope.columns:
            hint = f"; use {{\"nested\": {{\"path\": \"{field.rsplit('.', 1)[0]}\", ...}}}}"
        else:
            close = difflib.get_close_matches(field, known, n=1)
            if close:
                hint = f"; did you mean {close[0]!r}?"
        place = f" in {scope.path!r}" if scope.path else ""
        raise UserError(f"invalid guppy filter: {where}: unknown field {field!r}{place}{hint}")

    def leaf(self, op: str, field: str, value: Any, scope: _Scope, where: str) -> str:
        data_type = self.field_type(field, scope, where)
        kind = _kind(data_type)
        expr = scope.ref(field)
        if kind == "nested":
            raise UserError(f"invalid guppy filter: {where}: {field!r} is a nested field; "
                            f"use {{\"nested\": {{\"path\": \"{field}\", ...}}}}")
        if kind is None:
            raise UserError(f"invalid guppy filter: {where}: field {field!r} has type "
                            f"{data_type}, which guppy filters cannot compare")
        if kind == "keyword":
            return self.keyword(op, expr, data_type, value, where)
        return self.numeric(op, expr, data_type, value, where)

    def keyword(self, op: str, expr: str, data_type: pa.DataType, value: Any,
                where: str) -> str:
        if op in RANGE_OPS:
            raise UserError(f"invalid guppy filter: {where}: range operator {op!r} on a "
                            "text field (ranges need a numeric field)")
        wanted = value if isinstance(value, list) else [value]
        no_data = NO_DATA in wanted
        texts = sorted({_text(w) for w in wanted if w != NO_DATA})
        matches_any = self.keyword_in(expr, data_type, texts)
        if op == "!=":
            if no_data:
                return f"{self.has_data(expr, data_type)} and not {matches_any}"
            return f"not {matches_any}"
        if no_data:  # = / IN
            missing = f"not {self.has_data(expr, data_type)}"
            return f"{missing} or {matches_any}" if texts else missing
        return matches_any

    def keyword_in(self, expr: str, data_type: pa.DataType, texts: list[str]) -> str:
        """Some value of ``expr`` has one of ``texts`` as its keyword text."""
        if pa.types.is_boolean(_base(data_type)):  # compared as true/false literals
            literals = [t for t in texts if t in ("true", "false")]
        else:
            literals = [self.sql.string(t) for t in texts]
            if _is_list(data_type) and not _is_list(data_type.value_type):
                fast = self.sql.any_in(expr, literals) if literals else None
                if fast:
                    return fast
        if not literals:
            return "false"
        if len(literals) == 1:
            return self.any_value(expr, data_type, lambda v: f"{v} = {literals[0]}")
        listed = ", ".join(literals)
        return self.any_value(expr, data_type, lambda v: f"{v} in ({listed})")

    def numeric(self, op: str, expr: str, data_type: pa.DataType, value: Any,
                where: str) -> str:
        if op in RANGE_OPS:
            number = self.number(value, where)
            return self.any_value(expr, data_type, lambda v: f"{v} {_RANGE_SQL[op]} {number}")
        if op == "!=":
            number = self.number(value, where)
            return self.any_value(expr, data_type,
                                  lambda v: f"({v} > {number} or {v} < {number})")
        wanted = value if isinstance(value, list) else [value]
        no_data = NO_DATA in wanted
        numbers = sorted({self.number(w, where) for w in wanted if w != NO_DATA})
        parts = [f"not {self.has_data(expr, data_type)}"] if no_data else []
        if numbers:
            listed = ", ".join(numbers)
            parts.append(self.any_value(expr, data_type, lambda v: f"{v} in ({listed})"))
        return " or ".join(parts) if parts else "false"

    @staticmethod
    def number(value: Any, where: str) -> str:
        """``value`` as a SQL numeric literal (numbers, or text that is one, as ES accepts)."""
        number: int | float
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise UserError(f"invalid guppy filter: {where}: {value!r} is not a number "
                            "(the field is numeric)")
        try:
            number = value if isinstance(value, int) else float(value)
        except ValueError:
            raise UserError(f"invalid guppy filter: {where}: {value!r} is not a number "
                            "(the field is numeric)") from None
        if isinstance(number, float):
            if not math.isfinite(number):
                raise UserError(f"invalid guppy filter: {where}: {value!r} is not a finite "
                                "number")
            if number.is_integer() and abs(number) < _EXACT_INT:
                number = int(number)
        if isinstance(number, int) and abs(number) >= 2**63:
            number = float(number)
        return repr(number) if isinstance(number, float) else str(number)

    def nested(self, body: Mapping[str, Any], scope: _Scope, where: str) -> str:
        path: str = body["path"]
        op, clause_body = next((k, v) for k, v in body.items() if k != "path")
        relative = path
        if scope.path and path.startswith(scope.path + "."):
            relative = path[len(scope.path) + 1:]
        return self.walk(relative.split("."), {op: clause_body}, scope, where)

    def walk(self, parts: list[str], clause: Mapping[str, Any], scope: _Scope,
             where: str) -> str:
        name, rest = parts[0], parts[1:]
        data_type = self.field_type(name, scope, f"{where}.path")
        base = _base(data_type)
        if not pa.types.is_struct(base):
            raise UserError(f"invalid guppy filter: {where}.path: {name!r} is not a nested "
                            "field (a list of objects)")
        item_path = f"{scope.path}.{name}" if scope.path else name
        item = self.variable()
        item_scope = _Scope({f.name: f.type for f in base}, item_path,
                            lambda field: self.sql.field(item, field))
        inner = self.walk(rest, clause, item_scope, where) if rest \
            else self.clause(clause, item_scope, where)
        condition = f"{item} is not null and ({inner})"
        array = scope.ref(name)
        if not _is_list(data_type):  # a single object is a one-item list
            array = f"[{array}]"
            data_type = pa.list_(data_type)
        return self.any_levels(array, data_type, item, condition)

    def any_levels(self, array: str, data_type: pa.DataType, item: str, condition: str) -> str:
        if _is_list(data_type.value_type):
            variable = self.variable()
            return self.sql.any_item(
                array, variable, self.any_levels(variable, data_type.value_type, item, condition))
        return self.sql.any_item(array, item, condition)

    def search(self, body: Mapping[str, Any], scope: _Scope, where: str) -> str:
        keyword: str = body["keyword"]
        fields = body.get("fields") or None
        if isinstance(fields, str):
            fields = [fields]
        if fields is None:
            names = [n for n, t in scope.columns.items() if _kind(t) == "keyword"]
        else:
            for position, name in enumerate(fields):
                self.field_type(name, scope, f"{where}.fields[{position}]")
            names = [n for n in fields if _kind(scope.columns[n]) == "keyword"]
        searchable = 2 <= len(keyword) <= SEARCH_MAX_GRAM and all(
            c.isalpha() or c.isdecimal() for c in keyword)
        if not searchable or not names:
            return "false"
        needle = self.sql.string(keyword.lower())
        parts = []
        for name in dict.fromkeys(names):
            data_type = scope.columns[name]
            cast = pa.types.is_boolean(_base(data_type))

            def contains(value: str, cast: bool = cast) -> str:
                return f"strpos(lower({f'cast({value} as string)' if cast else value}), {needle}) > 0"

            parts.append(self.any_value(scope.ref(name), data_type, contains))
        return " or ".join(f"({part})" for part in parts)
