"""Loading and checking guppy filter files (the JSON the MIDRC explorer writes).

The check is structural (operators, arity, value shapes), so a typo is reported
before any request is sent; whether the fields exist is for guppy to say.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ingest.errors import UserError

BOOLEAN_OPS = {"and", "or"}
EQUALITY_OPS = {"=", "eq", "EQ", "!="}
LIST_OPS = {"in", "IN"}
RANGE_OPS = {">", ">=", "<", "<=", "gt", "gte", "lt", "lte", "GT", "GTE", "LT", "LTE"}
SCALARS = (str, int, float, bool)
NO_DATA = "no data"  # guppy's alias for a missing value, in =, IN and !=
SEARCH_MIN_LENGTH = 2  # guppy's allowedMinimumSearchLen


def load_filter(path: Path) -> dict[str, Any] | None:
    """The filter in ``path``; ``None`` for an empty object (no filter).

    Raises:
        UserError: the file is missing, not JSON, or not a guppy filter.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"filter file not found: {path}") from None
    except OSError as error:  # a directory, no permission
        raise UserError(f"cannot read filter file {path}: {error.strerror or error}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"filter file {path} is not valid JSON: {error}") from None
    problem = filter_problem(document)
    if problem:
        raise UserError(f"filter file {path} is not a valid guppy filter: {problem}")
    return document or None


def filter_problem(node: Any, where: str = "filter") -> str | None:
    """A one-line description of what is wrong with ``node``, or ``None`` if valid."""
    if not isinstance(node, dict):
        return f"{where} must be a JSON object, not {type(node).__name__}"
    if not node:
        return None
    if len(node) != 1:
        return f"{where} must have exactly one operator, found {sorted(node)}"
    op, body = next(iter(node.items()))
    lower = op.lower()
    if lower in BOOLEAN_OPS:
        if not isinstance(body, list):
            return f"{where}.{op} must be a list of filters"
        for position, child in enumerate(body):
            problem = filter_problem(child, f"{where}.{op}[{position}]")
            if problem:
                return problem
        return None
    if lower == "nested":
        if not isinstance(body, dict) or not isinstance(body.get("path"), str):
            return f"{where}.nested must be an object with a string 'path'"
        rest = {k: v for k, v in body.items() if k != "path"}
        if len(rest) != 1:
            return f"{where}.nested must have one operator besides 'path'"
        return filter_problem(rest, f"{where}.nested")
    if lower == "search":
        if not isinstance(body, dict) or not isinstance(body.get("keyword"), str):
            return f"{where}.{op} must be an object with a string 'keyword'"
        unknown = sorted(set(body) - {"keyword", "fields"})
        if unknown:
            return f"{where}.{op}: unknown key {unknown[0]!r} (use 'keyword' and 'fields')"
        if len(body["keyword"]) < SEARCH_MIN_LENGTH:
            return f"{where}.{op}.keyword must be at least {SEARCH_MIN_LENGTH} characters"
        fields = body.get("fields")
        if fields is not None and not isinstance(fields, str) and not (
            isinstance(fields, list) and all(isinstance(f, str) for f in fields)
        ):
            return f"{where}.{op}.fields must be a field name or a list of them"
        return None
    if op not in EQUALITY_OPS | LIST_OPS | RANGE_OPS:
        return f"{where}: unknown operator {op!r}"
    if not isinstance(body, dict) or len(body) != 1:
        return f"{where}.{op} must be an object with exactly one field"
    field, value = next(iter(body.items()))
    if op in LIST_OPS:
        if not isinstance(value, list) or not all(isinstance(v, SCALARS) for v in value):
            return f"{where}.{op}.{field} must be a list of values"
    elif op == "!=":
        if not isinstance(value, SCALARS) and not (
            isinstance(value, list) and all(isinstance(v, SCALARS) for v in value)
        ):
            return f"{where}.{op}.{field} must be a value or a list of values"
    elif op in RANGE_OPS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{where}.{op}.{field} must be a number"
    elif not isinstance(value, SCALARS):
        return f"{where}.{op}.{field} must be a single value"
    return None
