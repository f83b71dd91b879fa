"""Printing query results as a table, CSV or JSON."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import pyarrow as pa
from rich.console import Console
from rich.table import Table


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date | dt.time | dt.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        # scale 0 is an integer type too wide for int64 (DuckDB's HUGEINT, e.g. a sum of BIGINTs)
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _csv_cell(value: Any) -> Any:
    """A CSV cell: empty for null, JSON for lists and structs, else the plain value."""
    if value is None:
        return ""
    return json.dumps(_plain(value)) if isinstance(value, list | dict) else _plain(value)


def print_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, out: TextIO | None = None) -> None:
    """Print ``rows`` (tuples in ``columns`` order) to ``out`` (stdout) in ``fmt``."""
    out = out or sys.stdout
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_cell(v) for v in row])
    elif fmt == "json":
        records = [dict(zip(columns, (_plain(v) for v in row), strict=True)) for row in rows]
        out.write(json.dumps(records, ensure_ascii=False, indent=1) + "\n")
    else:
        table = Table(*columns, show_lines=False)
        for row in rows:
            table.add_row(*("" if v is None else str(_plain(v)) for v in row))
        Console(file=out, width=max(100, Console().width)).print(table)


def table_rows(table: pa.Table) -> tuple[list[str], list[tuple[Any, ...]]]:
    """An Arrow table's column names and its rows as tuples of Python values."""
    columns = [column.to_pylist() for column in table.columns]
    return list(table.column_names), list(zip(*columns, strict=True)) if columns else []


def print_table(table: pa.Table, fmt: str, out: TextIO | None = None) -> None:
    """:func:`print_rows` for an Arrow table."""
    print_rows(*table_rows(table), fmt, out)
