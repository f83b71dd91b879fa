"""Printing query results: a table for a person, CSV or JSON for a program.

A table shows the first :data:`TABLE_ROWS` rows (``--limit`` says how many) and says how many
more there are. Columns too wide for the terminal fold; when even folded columns cannot fit,
each row is printed as a block of ``column = value`` lines (as ``duckdb -line`` does). A table
shows NULL as a dim ``NULL`` and '' as nothing; booleans as ``true``/``false``, lists and
structs as JSON, as CSV does. CSV cells are what ``cohortdb export csv`` writes
(:func:`~cohortdb.warehouse.duckdb.write_delimited`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import pyarrow as pa
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cohortdb.warehouse.duckdb import write_delimited

TABLE_ROWS = 40
"""Rows a table shows unless ``--limit`` says otherwise."""
FOLDED_WIDTH = 12
"""The least width of a folded column (its header's, when wider; its widest cell's, when narrower)."""
NON_TERMINAL_WIDTH = 100
"""The least width of a table written to a file or a pipe (wider when ``$COLUMNS`` says so)."""


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


def _cell(value: Any) -> Text:
    """A table cell: a dim NULL for null, JSON for nested values, ``true``/``false``, else the value."""
    if value is None:
        return Text("NULL", style="dim")
    if isinstance(value, bool):
        return Text("true" if value else "false")
    if isinstance(value, list | dict):
        return Text(json.dumps(_plain(value), ensure_ascii=False))
    return Text(str(_plain(value)))


def _width(text: Text) -> int:
    """The terminal cells of ``text``'s longest line."""
    return max(cell_len(line) for line in text.plain.split("\n"))


def print_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, out: TextIO | None = None,
               *, limit: int | None = None) -> None:
    """Print ``rows`` (tuples in ``columns`` order) to ``out`` (stdout) in ``fmt``: :func:`print_table`."""
    arrays = [pa.array([row[index] for row in rows]) for index in range(len(columns))]
    print_table(pa.Table.from_arrays(arrays, names=list(columns)), fmt, out, limit=limit)


def table_rows(table: pa.Table) -> tuple[list[str], list[tuple[Any, ...]]]:
    """An Arrow table's column names and its rows as tuples of Python values."""
    columns = [column.to_pylist() for column in table.columns]
    return list(table.column_names), list(zip(*columns, strict=True)) if columns else []


def print_table(table: pa.Table, fmt: str, out: TextIO | None = None, *, limit: int | None = None) -> None:
    """Print an Arrow table to ``out`` (stdout) as ``fmt`` (table, csv or json): at most ``limit``
    rows (None: a table's first :data:`TABLE_ROWS`, every row in CSV and JSON)."""
    out = out or sys.stdout
    if fmt == "table":
        _print_for_a_person(table, out, TABLE_ROWS if limit is None else limit)
        return
    if limit is not None:
        table = table.slice(0, limit)
    if fmt == "csv":
        write_delimited(table, out, "csv")
    else:
        columns, rows = table_rows(table)
        records = [dict(zip(columns, (_plain(v) for v in row), strict=True)) for row in rows]
        out.write(json.dumps(records, ensure_ascii=False, indent=1) + "\n")


def _console(out: TextIO) -> Console:
    """A console on ``out``: a terminal's own width, else at least :data:`NON_TERMINAL_WIDTH`."""
    console = Console(file=out, highlight=False)
    if console.is_terminal:
        return console
    return Console(file=out, highlight=False, width=max(NON_TERMINAL_WIDTH, console.width))


def _print_for_a_person(table: pa.Table, out: TextIO, limit: int) -> None:
    """The first ``limit`` rows as a table (folded if need be) or as ``column = value`` blocks
    (no row: one line naming the columns), then how many rows were left out."""
    console = _console(out)
    columns, rows = table_rows(table.slice(0, limit))
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([cell_len(name), *(_width(row[index]) for row in cells)]) for index, name in enumerate(columns)]
    folded = [min(width, max(cell_len(name), FOLDED_WIDTH)) for name, width in zip(columns, widths, strict=True)]
    borders = 3 * len(columns) + 1  # "│ " before each column, " │" after the last
    if sum(folded) + borders <= console.width:
        grid = Table(show_lines=False)
        for name, least in zip(columns, folded, strict=True):
            grid.add_column(Text(name), min_width=least, overflow="fold")
        for row in cells:
            grid.add_row(*row)
        console.print(grid)
    elif cells:
        _print_vertical(console, columns, cells)
    else:  # no block to print: the columns are all there is to show
        console.print(Text(f"0 rows; columns: {', '.join(columns)}"), soft_wrap=True)
    more = table.num_rows - len(rows)
    if more > 0:
        console.print(Text(f"… {more:,} more rows ({table.num_rows:,} in all): --limit N shows more, "
                           "--format csv every one", style="dim"), soft_wrap=True)


def _print_vertical(console: Console, columns: list[str], cells: list[list[Text]]) -> None:
    """Each row as ``column = value`` lines (names right-aligned), rows apart by an empty line."""
    name_width = max(cell_len(name) for name in columns)
    indent = "\n" + " " * (name_width + 3)
    for index, row in enumerate(cells):
        if index:
            console.print()
        for name, cell in zip(columns, row, strict=True):
            value = Text(cell.plain.replace("\n", indent), style=cell.style) if "\n" in cell.plain else cell
            console.print(Text(" " * (name_width - cell_len(name)) + name + " = ") + value, soft_wrap=True)
