"""How results of the two engines are compared: the differences allowed, and why."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from typing import Any

import pyarrow as pa

KNOWN_DIFFERENCES = {
    "NULL vs []": "BigQuery has no NULL array: a NULL list reads back as [] (the emulator keeps NULL "
                  "internally but its REST reads return [] too), so both count as 'no items'.",
}
"""What the comparison allows, and why (docs/scale.md says the same)."""


def normal(value: Any) -> Any:
    """A value both engines' results can be compared by: [] and NULL alike (KNOWN_DIFFERENCES),
    JSON text parsed, floats to 9 significant digits, decimals as floats."""
    if isinstance(value, list | tuple):
        return tuple(normal(v) for v in value) or None
    if isinstance(value, dict):
        return tuple(sorted((k, normal(v)) for k, v in value.items()))
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float):
        return float(f"{value:.9g}") if math.isfinite(value) else repr(value)
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return normal(json.loads(value))
        except ValueError:
            return value
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    return value


def rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """The rows of ``table``, each value :func:`normal`, sorted."""
    found = [tuple(normal(v) for v in row.values()) for row in table.to_pylist()]
    return sorted(found, key=repr)
