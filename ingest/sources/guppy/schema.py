"""Arrow type inference for guppy records: one widened type per field.

Guppy (Elasticsearch) documents are schemaless JSON: the same field can be an
int in one record, a float or a string in another, a scalar here and a list
there. :func:`infer_type` maps the values of one field, across all records, to
a single Arrow type by joining the type of every value in a small lattice:

* ``null`` joins to anything (a field missing or null in a record);
* ``int64`` and ``float64`` join to ``float64``;
* a scalar and a list join to a list (the scalar becomes a one-item list, which
  is also how Elasticsearch treats it);
* two lists join elementwise, two objects join to a struct with the union of
  their fields (sorted by name), each field joined;
* anything else (string vs number, bool vs number, object vs scalar, ints
  beyond int64) joins to ``string``: the value's JSON text, so nothing is lost.

The join is commutative and associative, so the result does not depend on the
order of the records. A type that stays ``null`` (every value null, empty
lists, empty objects) resolves to ``string``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

NULL = pa.null()
BOOL = pa.bool_()
INT = pa.int64()
FLOAT = pa.float64()
STRING = pa.string()

_SCALARS: dict[type, pa.DataType] = {str: STRING, bool: BOOL, int: INT, float: FLOAT}


@dataclass(frozen=True)
class Inferred:
    """The joined type of a column, and whether its values fit it as they are.

    ``native`` means ``pa.array(values, type=type)`` reproduces the values
    faithfully, so the flattener can skip its per-value conversion.
    """

    type: pa.DataType
    native: bool


def join(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The narrowest type both ``a`` and ``b`` widen to (see the module docstring)."""
    if a == b:
        return a
    if a == NULL:
        return b
    if b == NULL:
        return a
    a_list, b_list = pa.types.is_list(a), pa.types.is_list(b)
    if a_list or b_list:
        a_item = a.value_type if a_list else a
        b_item = b.value_type if b_list else b
        return pa.list_(join(a_item, b_item))
    if {a, b} == {INT, FLOAT}:
        return FLOAT
    if pa.types.is_struct(a) and pa.types.is_struct(b):
        fields = {f.name: f.type for f in a}
        for f in b:
            fields[f.name] = join(fields.get(f.name, NULL), f.type)
        return pa.struct([(name, fields[name]) for name in sorted(fields)])
    return STRING


def resolve(data_type: pa.DataType) -> pa.DataType:
    """Replace types Parquet cannot hold well (``null``, empty structs) by ``string``."""
    if data_type == NULL:
        return STRING
    if pa.types.is_list(data_type):
        return pa.list_(resolve(data_type.value_type))
    if pa.types.is_struct(data_type):
        if data_type.num_fields == 0:
            return STRING
        return pa.struct([(f.name, resolve(f.type)) for f in data_type])
    return data_type


def infer_type(values: Sequence[Any]) -> Inferred:
    """Join the types of ``values`` (one field across records; ``None`` = missing).

    Returns the type before :func:`resolve`: it may still contain ``null``.
    """
    kinds = set(map(type, values))
    kinds.discard(type(None))
    result = NULL
    native = True
    scalar_kinds = [k for k in kinds if k not in (list, dict)]
    for kind in scalar_kinds:
        scalar = _SCALARS.get(kind)
        if scalar is None or scalar == INT and not _ints_fit(values):  # not JSON, or too big: keep the text
            scalar, native = STRING, False
        result = join(result, scalar)
    if list in kinds:
        items = [item for value in values if type(value) is list for item in value]
        inner = infer_type(items)
        native = native and inner.native
        result = join(result, pa.list_(inner.type))
    if dict in kinds:
        objects = [value for value in values if type(value) is dict]
        struct = _infer_struct(objects)
        native = native and struct.native
        result = join(result, struct.type)
    if len(kinds) > 1 and kinds != {int, float}:
        native = False  # scalars wrapped into lists, or values widened to text
    return Inferred(result, native)


def _infer_struct(objects: list[dict[str, Any]]) -> Inferred:
    names = sorted({name for obj in objects for name in obj})
    fields = []
    native = True
    for name in names:
        inferred = infer_type([obj.get(name) for obj in objects])
        fields.append((name, inferred.type))
        native = native and inferred.native
    return Inferred(pa.struct(fields), native)


def _ints_fit(values: Sequence[Any]) -> bool:
    ints = [v for v in values if type(v) is int]
    return not ints or (min(ints) >= INT64_MIN and max(ints) <= INT64_MAX)

