"""Guppy's GraphQL surface, executed over in-memory records (parsed with graphql-core).

Raw queries ``<type>(first, offset, sort, filter, accessibility) { f nested { g } }``,
``_aggregation { <type>(filter, filterSelf) { _totalCount f { histogram {…} } } }``
and ``_mapping { <type> }``. Errors come back the way guppy sends them:
:class:`ValidationFailed` (HTTP 400) and :class:`BadUserInput` (HTTP 200 + errors).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from graphql import GraphQLError, parse
from graphql.language import FieldNode, OperationDefinitionNode
from graphql.utilities import value_from_ast_untyped

from tests.fake_gen3.filters import KEYWORD, NESTED, NUMERIC, FilterError, matches

MAX_WINDOW = 10_000


class ValidationFailed(Exception):
    """A parse or validation error: guppy answers HTTP 400."""


class BadUserInput(Exception):
    """A resolver error: guppy answers HTTP 200 with ``errors`` and ``data.<type>: null``."""

    def __init__(self, message: str, type_name: str) -> None:
        super().__init__(message)
        self.type_name = type_name


Records = Callable[[str], list[dict[str, Any]]]
"""The records of one type visible to the caller (the auth filter applied)."""


def execute(query: str, variables: Mapping[str, Any] | None, records: Records,
            kinds: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """The ``data`` object answering ``query``.

    Raises:
        ValidationFailed, BadUserInput: as guppy would.
    """
    try:
        document = parse(query)
    except GraphQLError as error:
        raise ValidationFailed(f"Syntax Error: {error.message}") from None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1:
        raise ValidationFailed("Expected exactly one operation")
    data: dict[str, Any] = {}
    for field in _fields(operations[0]):
        name = field.name.value
        if name == "_aggregation":
            data[name] = {
                sub.name.value: _aggregate(sub, variables, records, kinds)
                for sub in _fields(field)
            }
        elif name == "_mapping":
            data[name] = {
                sub.name.value: sorted(_kinds_of(sub.name.value, kinds, "Mapping"))
                for sub in _fields(field)
            }
        elif name in kinds:
            data[name] = _raw(field, variables, records, kinds[name])
        else:
            raise ValidationFailed(f'Cannot query field "{name}" on type "Query".')
    return data


def _fields(node: Any) -> list[FieldNode]:
    selection = node.selection_set
    return [s for s in selection.selections if isinstance(s, FieldNode)] if selection else []


def _args(field: FieldNode, variables: Mapping[str, Any] | None) -> dict[str, Any]:
    return {a.name.value: value_from_ast_untyped(a.value, variables) for a in field.arguments}


def _kinds_of(type_name: str, kinds: Mapping[str, Mapping[str, str]],
              parent: str) -> Mapping[str, str]:
    if type_name not in kinds:
        raise ValidationFailed(f'Cannot query field "{type_name}" on type "{parent}".')
    return kinds[type_name]


def _matching(type_name: str, filter_: Any, records: Records,
              type_kinds: Mapping[str, str]) -> list[dict[str, Any]]:
    try:
        return [r for r in records(type_name) if matches(r, filter_, type_kinds)]
    except FilterError as error:
        raise BadUserInput(
            f'Please check your syntax for input "filter" argument: {error}', type_name
        ) from None


def _raw(field: FieldNode, variables: Mapping[str, Any] | None, records: Records,
         type_kinds: Mapping[str, str]) -> list[dict[str, Any]]:
    type_name = field.name.value
    args = _args(field, variables)
    first = args.get("first") or 10
    offset = args.get("offset") or 0
    if first + offset > MAX_WINDOW:
        raise BadUserInput(
            f"Large graphql query forbidden for offset + size > {MAX_WINDOW}, "
            f"offset = {offset} and size = {first}, please use download endpoint for this",
            type_name,
        )
    selections = _fields(field)
    _check_selection(selections, type_kinds, "", type_name)
    rows = _matching(type_name, args.get("filter"), records, type_kinds)
    rows = _sorted(rows, args.get("sort"), type_kinds, type_name)
    return [_project(row, selections) for row in rows[offset: offset + first]]


def _check_selection(selections: list[FieldNode], type_kinds: Mapping[str, str],
                     prefix: str, type_name: str) -> None:
    for node in selections:
        path = prefix + node.name.value
        kind = type_kinds.get(path)
        if kind is None or (kind == NESTED) != bool(node.selection_set):
            raise ValidationFailed(
                f'Cannot query field "{node.name.value}" on type "{type_name.capitalize()}".'
            )
        if kind == NESTED:
            _check_selection(_fields(node), type_kinds, path + ".", type_name)


def _project(row: Mapping[str, Any], selections: list[FieldNode]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for node in selections:
        value = row.get(node.name.value)
        if node.selection_set and value is not None:
            items = value if isinstance(value, list) else [value]
            value = [_project(item, _fields(node)) for item in items]
        out[node.name.value] = value
    return out


def _sorted(rows: list[dict[str, Any]], sort: Any, type_kinds: Mapping[str, str],
            type_name: str) -> list[dict[str, Any]]:
    if not sort:
        return rows
    units = sort if isinstance(sort, list) else [{k: v} for k, v in sort.items()]
    for unit in reversed(units):
        if not isinstance(unit, dict) or len(unit) != 1:
            raise BadUserInput("Invalid sort argument", type_name)
        field, direction = next(iter(unit.items()))
        if field not in type_kinds or direction not in ("asc", "desc"):
            raise BadUserInput("Invalid sort argument", type_name)
        present = [r for r in rows if _sort_key(r.get(field), direction) is not None]
        missing = [r for r in rows if _sort_key(r.get(field), direction) is None]
        present.sort(key=lambda r: _sort_key(r.get(field), direction),  # noqa: B023
                     reverse=direction == "desc")
        rows = present + missing
    return rows


def _sort_key(value: Any, direction: str) -> Any:
    values = value if isinstance(value, list) else [value]
    values = [v for v in values if v is not None and not isinstance(v, dict)]
    if not values:
        return None
    return min(values) if direction == "asc" else max(values)


def _aggregate(field: FieldNode, variables: Mapping[str, Any] | None, records: Records,
               kinds: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    type_name = field.name.value
    type_kinds = _kinds_of(type_name, kinds, "Aggregation")
    args = _args(field, variables)
    filter_ = args.get("filter")
    filter_self = args.get("filterSelf", True)
    out: dict[str, Any] = {}
    for node in _fields(field):
        name = node.name.value
        if name == "_totalCount":
            out[name] = len(_matching(type_name, filter_, records, type_kinds))
            continue
        kind = type_kinds.get(name)
        if kind is None:
            raise ValidationFailed(f'Cannot query field "{name}" on type "{type_name}Aggregation".')
        rows = _matching(type_name, filter_ if filter_self else _without(filter_, name),
                         records, type_kinds)
        if kind == NESTED:
            out[name] = {
                sub.name.value: _field_histograms(
                    sub, [item for r in rows for item in _as_list(r.get(name))
                          if isinstance(item, dict)],
                    type_kinds.get(f"{name}.{sub.name.value}"), variables)
                for sub in _fields(node)
            }
        else:
            out[name] = _field_histograms(node, rows, kind, variables)
    return out


def _field_histograms(node: FieldNode, rows: list[Mapping[str, Any]], kind: str | None,
                      variables: Mapping[str, Any] | None) -> dict[str, Any]:
    if kind not in (KEYWORD, NUMERIC):
        raise ValidationFailed(f'Cannot query field "{node.name.value}" on this aggregation.')
    out: dict[str, Any] = {}
    for sub in _fields(node):
        values = [_as_list(r.get(node.name.value)) for r in rows]
        histogram = _text_histogram(values) if kind == KEYWORD else _numeric_histogram(values, _args(sub, variables))
        out[sub.name.value] = [
            {s.name.value: bucket.get(s.name.value) for s in _fields(sub)} for bucket in histogram
        ]
    return out


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return [v for v in value if v is not None] if isinstance(value, list) else [value]


def _text_histogram(values: list[list[Any]]) -> list[dict[str, Any]]:
    counts: Counter[str] = Counter()
    for row in values:
        counts.update({str(v) for v in row})
    buckets = [{"key": k, "count": c} for k, c in
               sorted(counts.items(), key=lambda kc: (-kc[1], kc[0]))]
    missing = sum(1 for row in values if not row)
    if missing:
        buckets.append({"key": "no data", "count": missing})
    return buckets


def _numeric_histogram(values: list[list[Any]], args: Mapping[str, Any]) -> list[dict[str, Any]]:
    numbers = [float(v) for row in values for v in row]
    if not numbers:
        return []
    low, high = min(numbers), max(numbers)
    if not args:
        return [{"key": [low, high], "min": low, "max": high, "avg": sum(numbers) / len(numbers),
                 "sum": sum(numbers), "count": len(numbers)}]
    start = float(args.get("rangeStart", low))
    end = float(args.get("rangeEnd", high))
    step = args.get("rangeStep")
    if step is None:
        step = (end - start) / max(int(args.get("binCount", 10)), 1) or 1.0
    buckets = []
    lower = start
    while lower < end or (lower == end == start):
        upper = lower + step
        inside = [n for n in numbers if lower <= n < upper or (upper >= end and n == end)]
        buckets.append({"key": [lower, upper], "count": len(inside)})
        lower = upper
    return buckets


def _without(filter_: Any, field: str) -> Any:
    """The filter with its top-level units on ``field`` removed (``filterSelf: false``)."""
    if not isinstance(filter_, dict) or not filter_:
        return filter_
    op, body = next(iter(filter_.items()))
    if op.lower() in ("and", "or") and isinstance(body, list):
        kept = [f for f in (_without(c, field) for c in body) if f]
        return {op: kept}
    if isinstance(body, dict) and op.lower() not in ("nested", "search") and field in body:
        return {}
    return filter_
