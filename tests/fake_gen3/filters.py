"""Guppy filter evaluation with Elasticsearch semantics, on Python dicts.

Independent of ``ingest/`` on purpose: it is the oracle that cohortdb's SQL
translation of guppy filters is tested against. Semantics (guppy 2025.06):

* only the first key of each object counts; ``AND``/``OR``/``nested``/``search``
  are case-insensitive, comparison operators are not;
* an empty filter, or AND/OR over ``[]``, matches everything;
* on a list field a clause matches if any element satisfies it; ``[]`` and a
  missing field are both "no data";
* keyword comparison is exact and case-sensitive (numbers and booleans given
  as values are compared by their keyword text, as ES does);
* keyword ``!=`` is ``must_not term``, so records missing the field match;
  numeric ``!=`` is ``> v OR < v``, so they don't;
* ``"no data"`` in ``=``/``IN`` matches a missing field;
* ``nested`` must be satisfied by one single item of the nested list; inside
  a nested block, field names are relative to its path, and an inner
  ``nested`` path may be full (``a.b``, as Elasticsearch wants) or relative
  (``b``); a dotted field name in a clause is an error (guppy: BAD_USER_INPUT);
* ``search`` is what guppy's ``multi_match`` on Tube's ``.analyzed``
  sub-fields does (ngram tokenizer, 2–20 letters/digits, lowercased; keyword
  tokenizer at search time): the lowercased keyword is a substring of the
  lowercased value, if the keyword is 2–20 letters and digits (else nothing
  matches; shorter than 2 is an error); default fields: every keyword field
  of the scope; naming a numeric or nested field matches nothing;
* range operators on keyword fields, unknown fields and unknown operators are
  errors (:class:`FilterError`, guppy's BAD_USER_INPUT).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KEYWORD = "keyword"
NUMERIC = "numeric"
NESTED = "nested"
NO_DATA = "no data"
EQUALS = {"=", "eq", "EQ"}
IN = {"in", "IN"}
RANGES = {
    ">": "gt", "gt": "gt", "GT": "gt", ">=": "gte", "gte": "gte", "GTE": "gte",
    "<": "lt", "lt": "lt", "LT": "lt", "<=": "lte", "lte": "lte", "LTE": "lte",
}


class FilterError(ValueError):
    """An invalid filter (guppy answers BAD_USER_INPUT)."""


def field_kinds(records: list[dict[str, Any]]) -> dict[str, str]:
    """The ES mapping implied by ``records``: dotted path → keyword/numeric/nested.

    A field is numeric when every value seen is a number (not a bool), nested
    when its values are lists of objects.
    """
    kinds: dict[str, str] = {}

    def visit(document: Mapping[str, Any], prefix: str) -> None:
        for name, value in document.items():
            path = f"{prefix}{name}"
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, dict):
                    kinds[path] = NESTED
                    visit(item, path + ".")
                elif item is None:
                    continue
                elif isinstance(item, (int, float)) and not isinstance(item, bool):
                    kinds.setdefault(path, NUMERIC)
                else:
                    if kinds.get(path) != NESTED:
                        kinds[path] = KEYWORD
            if value == [] or value is None:
                kinds.setdefault(path, KEYWORD)

    for record in records:
        visit(record, "")
    return kinds


def matches(document: Mapping[str, Any], filter_: Any, kinds: Mapping[str, str],
            prefix: str = "") -> bool:
    """Whether ``document`` satisfies ``filter_``; ``prefix`` is the nested path so far."""
    if not filter_:
        return True
    if not isinstance(filter_, dict):
        raise FilterError("Please check your syntax for input \"filter\" argument")
    op, body = next(iter(filter_.items()))
    lower = op.lower()
    if lower in ("and", "or"):
        if not isinstance(body, list):
            raise FilterError(f"{op} expects a list")
        results = [matches(document, child, kinds, prefix) for child in body]
        if not results:
            return True
        return all(results) if lower == "and" else any(results)
    if lower == "nested":
        return _nested(document, body, kinds, prefix)
    if lower == "search":
        return _search(document, body, prefix, kinds)
    if not isinstance(body, dict) or not body:
        raise FilterError(f"Invalid filter operation {op!r}")
    field, value = next(iter(body.items()))
    path = prefix + field
    kind = kinds.get(path)
    if kind is None or kind == NESTED or "." in field:
        raise FilterError(f"Invalid field {path!r} in filter")
    values = _values(document.get(field))
    if kind == KEYWORD:
        return _keyword(op, values, value)
    return _numeric(op, values, value)


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    return [v for v in value if v is not None] if isinstance(value, list) else [value]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _keyword(op: str, values: list[Any], wanted: Any) -> bool:
    texts = {_text(v) for v in values}
    if op in EQUALS:
        return not values if wanted == NO_DATA else _text(wanted) in texts
    if op in IN:
        if not isinstance(wanted, list):
            raise FilterError(f"{op} expects a list")
        if NO_DATA in wanted and not values:
            return True
        return any(_text(w) in texts for w in wanted if w != NO_DATA)
    if op == "!=":
        wanted_list = wanted if isinstance(wanted, list) else [wanted]
        if NO_DATA in wanted_list:
            return bool(values) and not any(_text(w) in texts for w in wanted_list
                                            if w != NO_DATA)
        return not any(_text(w) in texts for w in wanted_list)
    if op in RANGES:
        raise FilterError("Invalid operation: range filter on a text field")
    raise FilterError(f"Invalid filter operator {op!r}")


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise FilterError(f"Invalid numeric value {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise FilterError(f"Invalid numeric value {value!r}") from None


def _numeric(op: str, values: list[Any], wanted: Any) -> bool:
    numbers = [float(v) for v in values]
    if op in EQUALS:
        return not numbers if wanted == NO_DATA else _number(wanted) in numbers
    if op in IN:
        if not isinstance(wanted, list):
            raise FilterError(f"{op} expects a list")
        if NO_DATA in wanted and not numbers:
            return True
        return any(_number(w) in numbers for w in wanted if w != NO_DATA)
    if op == "!=":
        target = _number(wanted)
        return any(n > target or n < target for n in numbers)
    if op in RANGES:
        target = _number(wanted)
        test = {
            "gt": lambda n: n > target, "gte": lambda n: n >= target,
            "lt": lambda n: n < target, "lte": lambda n: n <= target,
        }[RANGES[op]]
        return any(test(n) for n in numbers)
    raise FilterError(f"Invalid filter operator {op!r}")


def _nested(document: Mapping[str, Any], body: Any, kinds: Mapping[str, str],
            prefix: str) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("path"), str):
        raise FilterError("nested filter needs a path")
    path = body["path"]
    if prefix and path.startswith(prefix):
        path = path[len(prefix):]  # given in full, as Elasticsearch wants
    full = prefix + path
    if kinds.get(full) != NESTED:
        raise FilterError(f"Invalid nested path {full!r}")
    rest = [(k, v) for k, v in body.items() if k != "path"]
    if not rest:
        return True
    clause = dict(rest[:1])
    items: list[Any] = [document]
    for part in path.split("."):
        next_items: list[Any] = []
        for item in items:
            value = item.get(part) if isinstance(item, dict) else None
            next_items.extend(value if isinstance(value, list) else [value])
        items = [i for i in next_items if isinstance(i, dict)]
    return any(matches(item, clause, kinds, full + ".") for item in items)


def _search(document: Mapping[str, Any], body: Any, prefix: str,
            kinds: Mapping[str, str]) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("keyword"), str):
        raise FilterError("search needs a keyword")
    unknown = set(body) - {"keyword", "fields"}
    if unknown:
        raise FilterError(f"Invalid search filter syntax: unrecognized field {unknown.pop()!r}")
    keyword = body["keyword"]
    if len(keyword) < 2:
        raise FilterError("search keyword must be at least 2 characters")
    fields = body.get("fields") or [f[len(prefix):] for f, k in kinds.items()
                                    if k == KEYWORD and f.startswith(prefix)
                                    and "." not in f[len(prefix):]]
    if isinstance(fields, str):
        fields = [fields]
    for field in fields:
        if not isinstance(field, str) or prefix + field not in kinds:
            raise FilterError(f"invalid field {field!r} in \"filter\" variable")
    # The keyword is one token (keyword tokenizer); it matches an indexed n-gram
    # (2-20 characters of a run of letters and digits) only if it is one.
    if len(keyword) > 20 or not all(c.isalpha() or c.isdecimal() for c in keyword):
        return False
    needle = keyword.lower()
    for field in fields:
        if kinds[prefix + field] != KEYWORD:
            continue  # numeric and nested fields have no .analyzed sub-field
        for value in _values(document.get(field)):
            if needle in _text(value).lower():
                return True
    return False
