"""Guppy records → typed Arrow columns (pure: no I/O, no clock).

One row per record. Each field becomes one column whose type is the join of
its values across all records (:mod:`ingest.sources.guppy.schema`): scalars typed,
arrays as list columns, arrays of objects as lists of structs whose fields are
the union of the items' fields. A field missing from a record is null there.
Values that had to be widened to text keep their JSON spelling (``true``,
``28``, ``1.5``, ``{"a":1}``). The record itself is kept, losslessly, as JSON
text in ``_record``; ``_commons`` and ``_ingested_at`` say where and when.

Speed: every column that Arrow's JSON reader types exactly as the lattice
(:mod:`ingest.sources.guppy.arrow_json`, usually all of them) is parsed in C++ from
the records' JSON texts; only the others are built here value by value
(:func:`column`). Both give the same result; the tests check it.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest.sources.guppy.arrow_json import typed_columns
from ingest.sources.guppy.json_text import dump_lines, dumps
from ingest.sources.guppy.schema import STRING, infer_type, resolve

COMMONS = "_commons"
INGESTED_AT = "_ingested_at"
RECORD = "_record"
METADATA_COLUMNS = (COMMONS, INGESTED_AT, RECORD)
TIMESTAMP = pa.timestamp("us", tz="UTC")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def flatten(
    records: Sequence[dict[str, Any]],
    *,
    commons: str,
    ingested_at: datetime,
    raw_texts: Sequence[str] | Sequence[bytes] | None = None,
) -> tuple[pa.Schema, list[pa.Array | pa.ChunkedArray]]:
    """Columns for ``records``, fields sorted by name, then the metadata columns.

    Args:
        records: guppy records (JSON objects); may be empty.
        commons: where they came from (endpoint URL or dump file URI).
        ingested_at: timezone-aware time of the ingest, the same for every row.
        raw_texts: each record's source JSON text on one line (str or UTF-8
            bytes), when the caller has it (NDJSON lines); otherwise records
            are re-serialised compactly.

    Raises:
        ValueError: a record is not a JSON object, or uses a reserved column name.
    """
    for position, record in enumerate(records):
        if type(record) is not dict:
            raise ValueError(
                f"record {position} is a {_json_kind(record)}, not a JSON object"
            )
    names = sorted(set().union(*records))
    reserved = sorted(set(names) & set(METADATA_COLUMNS))
    if reserved:
        raise ValueError(f"records use the reserved field name(s) {', '.join(reserved)}")

    count = len(records)
    if raw_texts is None:
        lines = dump_lines(records)
    elif len(raw_texts) != count:
        raise ValueError("raw_texts must have one text per record")
    else:
        lines = b"\n".join(t.encode() if isinstance(t, str) else t for t in raw_texts)

    def lines_without(left_out: set[str]) -> bytes | memoryview:
        return dump_lines([{k: v for k, v in record.items() if k not in left_out}
                           for record in records])

    typed = typed_columns(lines, count, names, lines_without) if names else {}
    fields: list[pa.Field] = []
    columns: list[pa.Array | pa.ChunkedArray] = []
    for name in names:
        array = typed.get(name)
        if array is None:
            array = column([record.get(name) for record in records])
        fields.append(pa.field(name, array.type))
        columns.append(array)
    record_texts = text_column(lines, count)  # None: a raw text spans lines
    fields += [
        pa.field(COMMONS, STRING, nullable=False),
        pa.field(INGESTED_AT, TIMESTAMP, nullable=False),
        pa.field(RECORD, STRING, nullable=False),
    ]
    columns += [
        repeated_text(commons, count),
        repeated_time(ingested_at, count),
        record_texts if record_texts is not None else pa.array(raw_texts, STRING),
    ]
    return pa.schema(fields), columns


def repeated_text(text: str, count: int) -> pa.Array | pa.ChunkedArray:
    """``text`` ``count`` times, as a string array (built from buffers: Arrow's
    conversion of Python objects would import pandas, which costs more than this)."""
    data = text.encode()
    step = len(data)
    per_chunk = (2**31 - 1) // step if step else count
    if count > per_chunk:  # more than string offsets address: chunks sharing buffers
        whole, rest = divmod(count, per_chunk)
        chunk = repeated_text(text, per_chunk)
        return pa.chunked_array([chunk] * whole + [repeated_text(text, rest)], STRING)
    offsets = array("i", range(0, step * count + 1, step)) if step else array("i", [0]) * (count + 1)
    return pa.Array.from_buffers(STRING, count, [None, pa.py_buffer(offsets),
                                                 pa.py_buffer(data * count)])


def repeated_time(moment: datetime, count: int) -> pa.Array:
    """Timezone-aware ``moment`` ``count`` times, as a UTC microsecond timestamp array."""
    micros = (moment - EPOCH) // timedelta(microseconds=1)
    values = array("q", [micros]) * count
    return pa.Array.from_buffers(TIMESTAMP, count, [None, pa.py_buffer(values)])


def text_column(lines: bytes | memoryview, count: int) -> pa.Array | pa.ChunkedArray | None:
    """The lines of ``lines`` (UTF-8, ``\n`` between) as strings; None unless ``count`` lines.

    Raises:
        ValueError: the text is not UTF-8.
    """
    if count == 0:
        return pa.nulls(0, STRING)
    if len(lines) < 2**31:  # split in C, in one buffer
        offsets = pa.py_buffer(struct.pack("<qq", 0, len(lines)))
        whole = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(lines)])
        texts = pc.split_pattern(whole, b"\n").flatten()
    else:  # more than string offsets can address: let pa.array chunk it
        texts = pa.array(bytes(lines).split(b"\n"), pa.binary())
    if len(texts) != count:
        return None
    try:
        return texts.cast(STRING)
    except pa.ArrowInvalid:
        raise ValueError("a record's JSON text is not UTF-8") from None


def column(values: Sequence[Any]) -> pa.Array:
    """One field's values (``None`` = missing) as an Arrow array of their joined type."""
    fast = _arrow_inferred(values)
    if fast is not None:
        return fast
    inferred = infer_type(values)
    target = resolve(inferred.type)
    if inferred.native:
        try:
            return pa.array(values, type=target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            pass  # e.g. empty objects, which resolve to text
    return pa.array([convert(value, target) for value in values], type=target)


def _arrow_inferred(values: Sequence[Any]) -> pa.Array | None:
    """Arrow's own (C) inference, when it provably agrees with the join lattice.

    Taken only for one JSON kind per column (or ints with floats) and for
    result types where Arrow refuses every mix the lattice would widen:
    scalars, and lists of strings or ints (or of such lists). Objects, lists
    of floats or booleans, and anything mixed go through :func:`infer_type`.
    """
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if dict in kinds or bool in kinds and len(kinds) > 1:
        return None
    if len(kinds) > 1 and kinds != {int, float}:
        return None
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        return None
    if not _agrees(array.type, top=True):
        return None
    target = resolve(array.type)
    return array if target == array.type else array.cast(target)


_TOP_TYPES = (pa.string(), pa.int64(), pa.float64(), pa.bool_(), pa.null())
_ITEM_TYPES = (pa.string(), pa.int64(), pa.null())


def _agrees(data_type: pa.DataType, *, top: bool) -> bool:
    if pa.types.is_list(data_type):
        return _agrees(data_type.value_type, top=False)
    return data_type in (_TOP_TYPES if top else _ITEM_TYPES)


def convert(value: Any, target: pa.DataType) -> Any:
    """``value`` reshaped to fit ``target``, a type that :func:`~ingest.sources.guppy.schema.join`
    produced for it: scalars wrapped into lists, ints made floats, the rest as JSON text."""
    if value is None:
        return None
    if pa.types.is_list(target):
        items = value if type(value) is list else [value]
        return [convert(item, target.value_type) for item in items]
    if pa.types.is_struct(target):
        return {f.name: convert(value.get(f.name), f.type) for f in target}
    if target == STRING:
        return value if type(value) is str else to_json(value)
    if pa.types.is_floating(target):
        return float(value)
    return value


def to_json(value: Any) -> str:
    """Compact JSON text, non-ASCII kept as is (``true``, ``1.5``, ``{"a":1}``)."""
    return dumps(value)


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "JSON array"
    if isinstance(value, str):
        return "JSON string"
    if value is None:
        return "JSON null"
    return f"JSON {type(value).__name__}"
