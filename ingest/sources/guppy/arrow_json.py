"""Columns typed by Arrow's C++ JSON reader, where it provably agrees with the lattice.

:func:`ingest.sources.guppy.flatten.flatten` hands every record's JSON text to
:func:`typed_columns`, which parses them all at once (multi-threaded) with
``pyarrow.json.read_json`` and keeps only the columns whose Arrow type is the
type :func:`ingest.sources.guppy.schema.join` would give. The flattener builds the
others value by value. This is sound because the reader is stricter than the
lattice, never looser, except where checked here:

* it refuses any field whose values mix JSON kinds (string, number, boolean,
  array, object) at any depth — "changed from number to string": that field
  is left out and the rest re-read — so every kept field has one kind;
* numbers become ``int64``, or ``double`` when any is not an integer, as in
  the lattice; an integer beyond 64 bits also becomes ``double`` there (the
  lattice says text), so a ``double`` holding a magnitude ≥ 2**63 is left out;
* strings that look like dates become ``timestamp``: such fields are left out;
* nested objects become structs in order of first appearance: cast to the
  lattice's order (fields sorted by name); empty objects are left out;
* a field that is always ``null`` is cast to ``string`` as :func:`resolve` does;
  ``null`` nested in lists or structs (e.g. always ``[]``) is left out, as the
  reader builds such arrays inconsistently (pyarrow 26);
* anything else it cannot vouch for (a record longer than the largest block,
  an answer with a different row count) is left out too.

A name missing from the result means "build this column in Python".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeAlias

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from ingest.sources.guppy.schema import BOOL, FLOAT, INT, INT64_MAX, NULL, STRING

BLOCK_SIZE = 8 << 20
MAX_REREADS = 3
_MIXED_FIELD = re.compile(r"Column\(/([^/)]*)[/)]")

Column: TypeAlias = "pa.Array | pa.ChunkedArray"


def typed_columns(
    lines: bytes | memoryview,
    count: int,
    names: Sequence[str],
    without: Callable[[set[str]], bytes | memoryview],
) -> dict[str, Column]:
    """The columns of ``names`` that Arrow types exactly as the lattice (see module doc).

    Args:
        lines: NDJSON, ``count`` records, each a JSON object on one line.
        count: how many records ``lines`` holds.
        names: every top-level field name of the records.
        without: ``lines`` again, with the given top-level fields removed (called
            when a field mixes JSON kinds; at most :data:`MAX_REREADS` times).

    Returns:
        ``{name: column}`` with ``count`` rows each, for the fields that agree;
        the others are absent (all of them if the reader refuses the input).
    """
    left_out: set[str] = set()
    for _ in range(MAX_REREADS + 1):
        try:
            table = _read(lines)
        except pa.ArrowInvalid as error:
            mixed = _mixed_field(str(error), names)
            if mixed is None or mixed in left_out:
                return {}
            left_out.add(mixed)
            lines = without(left_out)
            continue
        if table.num_rows != count:
            return {}  # e.g. two objects on one NDJSON line
        columns = {}
        for field in table.schema:
            if field.name in left_out:
                continue
            column = _as_lattice(table.column(field.name))
            if column is not None:
                columns[field.name] = column
        return columns
    return {}


def _read(lines: bytes | memoryview) -> pa.Table:
    """Parse NDJSON with Arrow's inference, in blocks large enough for every record."""
    block_size = BLOCK_SIZE
    while True:
        options = pa_json.ReadOptions(block_size=block_size)
        try:
            return pa_json.read_json(pa.BufferReader(pa.py_buffer(lines)),
                                     read_options=options)
        except pa.ArrowInvalid as error:
            if "straddl" not in str(error) or block_size > len(lines):
                raise
            block_size *= 4  # a record longer than a block


def _mixed_field(message: str, names: Sequence[str]) -> str | None:
    match = _MIXED_FIELD.search(message)
    if match is None or "changed from" not in message and "specified twice" not in message:
        return None
    name = match.group(1)
    return name if name in names else None


def _as_lattice(column: Column) -> Column | None:
    target = _lattice_type(column.type, top=True)
    if target is None or _has_double(column.type) and _holds_big_numbers(column):
        return None
    try:
        column.validate()
        return column if target == column.type else column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None  # e.g. an old pyarrow that cannot reorder struct fields


def _lattice_type(data_type: pa.DataType, *, top: bool = False) -> pa.DataType | None:
    """The resolved lattice type of a field Arrow typed ``data_type``, or None if unsure.

    ``null`` is trusted only at the top: the reader builds ``list<null>`` arrays
    whose offsets overrun their values (pyarrow 26).
    """
    if data_type in (STRING, INT, FLOAT, BOOL):
        return data_type
    if data_type == NULL:
        return STRING if top else None
    if pa.types.is_list(data_type):
        item = _lattice_type(data_type.value_type)
        return None if item is None else pa.list_(item)
    if pa.types.is_struct(data_type) and data_type.num_fields:
        fields = []
        for field in sorted(data_type, key=lambda f: f.name):
            field_type = _lattice_type(field.type)
            if field_type is None:
                return None
            fields.append((field.name, field_type))
        return pa.struct(fields)
    return None  # timestamps, empty structs: built from the Python values


def _has_double(data_type: pa.DataType) -> bool:
    if pa.types.is_list(data_type):
        return _has_double(data_type.value_type)
    if pa.types.is_struct(data_type):
        return any(_has_double(f.type) for f in data_type)
    return data_type == FLOAT


def _holds_big_numbers(column: Column) -> bool:
    """Whether a double anywhere in ``column`` could be an integer beyond int64."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    return any(
        (pc.max(pc.abs(leaf)).as_py() or 0) > INT64_MAX
        for chunk in chunks for leaf in _double_leaves(chunk)
    )


def _double_leaves(array: pa.Array) -> list[pa.Array]:
    if pa.types.is_list(array.type):
        return _double_leaves(array.flatten())
    if pa.types.is_struct(array.type):
        return [leaf for i in range(array.type.num_fields)
                for leaf in _double_leaves(array.field(i))]
    return [array] if array.type == FLOAT else []
