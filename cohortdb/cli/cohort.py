"""``cohortdb cohort``: the records of a guppy index that a guppy filter selects.

``cohort_app`` is a typer group so that subcommands (``cohortdb cohort list``,
for cohorts as code) can be added to it; without one, it evaluates
``--filter`` on ``raw.guppy_<--index>`` in the DuckDB warehouse with the one
translation of guppy filters (:mod:`cohortdb.cohorts.filter_sql`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cohortdb.warehouse.duckdb import database_path
from ingest.errors import UserError
from cohortdb.cohorts.filter_sql import filter_to_sql, guppy_columns, quote_identifier
from ingest.sources.guppy.flatten import RECORD
from ingest.sources.guppy.ingest import check_index_name
from ingest.settings import Settings

if TYPE_CHECKING:
    import duckdb

COHORT_FORMATS = ("table", "ids", "csv", "json")
ID_COLUMN = "submitter_id"

cohort_app = typer.Typer(help="Select cohorts: guppy filters evaluated on the warehouse.")


@cohort_app.callback(invoke_without_command=True)
def cohort_command(
    ctx: typer.Context,
    index: Annotated[str | None, typer.Option(
        "--index", help="Guppy index: case, imaging_study, data_file, …")] = None,
    filter_file: Annotated[Path | None, typer.Option(
        "--filter", help="Guppy filter JSON (as the MIDRC data explorer writes it).")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", "-f", help="table, ids (submitter_id, one a line, sorted), csv or json.",
    )] = "table",
) -> None:
    """Print the records of raw.guppy_<index> that the guppy filter selects."""
    if ctx.invoked_subcommand is not None:
        return
    from ingest.sources.guppy.filter_file import load_filter
    from cohortdb.warehouse.duckdb import connect
    from cohortdb.cli.output import print_rows

    if index is None or filter_file is None:
        raise UserError("give --index NAME and --filter FILE "
                        "(e.g. cohortdb cohort --index imaging_study --filter f.json)")
    if fmt not in COHORT_FORMATS:
        raise UserError(f"unknown --format {fmt!r}; choose one of {', '.join(COHORT_FORMATS)}")
    filter_ = load_filter(filter_file)
    settings: Settings = ctx.obj
    with connect(settings, read_only=True) as con:
        columns, rows = select_cohort(con, index, filter_, ids_only=fmt == "ids")
    if fmt == "ids":
        for (submitter_id,) in rows:
            typer.echo(submitter_id)
    elif fmt == "table":
        print_rows(*_without_empty_columns(columns, rows), fmt)
    else:
        print_rows(columns, rows, fmt)


def _without_empty_columns(columns: list[str], rows: list[tuple[Any, ...]]
                           ) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Drop the columns that are null in every row (a terminal table has no room for them)."""
    keep = [i for i, _ in enumerate(columns) if i == 0 or any(row[i] is not None for row in rows)]
    return [columns[i] for i in keep], [tuple(row[i] for i in keep) for row in rows]


def select_cohort(
    con: duckdb.DuckDBPyConnection,
    index: str,
    filter_: dict[str, Any] | None,
    *,
    ids_only: bool = False,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The rows of ``raw.guppy_<index>`` that ``filter_`` selects, sorted by submitter_id.

    ``submitter_id`` first, then every other column but ``_record`` (the
    source JSON); only ``submitter_id`` with ``ids_only``.

    Raises:
        UserError: no such table, no submitter_id for ``ids_only``, or an
            invalid filter.
    """
    table = f"guppy_{check_index_name(index)}"
    exists = con.execute(
        "select count(*) from duckdb_tables() where schema_name = 'raw' and table_name = ?",
        [table],
    ).fetchone()
    if not exists or not exists[0]:
        raise UserError(f"no table raw.{table} in the warehouse; ingest it with `cohortdb "
                        f"ingest guppy --index {index} ...`, then run `cohortdb load`")
    schema = con.execute(f"select * from raw.{table} limit 0").to_arrow_table().schema
    where = filter_to_sql(filter_, guppy_columns(schema), "duckdb", relation_alias="g")
    has_id = ID_COLUMN in schema.names
    if ids_only and not has_id:
        raise UserError(f"raw.{table} has no {ID_COLUMN} column; use --format table, csv "
                        "or json")
    hidden = [name for name in (ID_COLUMN, RECORD) if name in schema.names]
    rest = f"* exclude ({', '.join(quote_identifier(n) for n in hidden)})" if hidden else "*"
    selected = quote_identifier(ID_COLUMN) if ids_only else \
        f"{quote_identifier(ID_COLUMN)}, {rest}" if has_id else rest
    order = f" order by {quote_identifier(ID_COLUMN)}" if has_id else ""
    result = con.execute(f"select {selected} from raw.{table} as g where {where}{order}")
    columns = [d[0] for d in result.description or []]
    return columns, result.fetchall()



@cohort_app.command("list")
def list_command(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")] = "table",
) -> None:
    """The saved cohorts (cohorts/*.yml|json) and their sizes in the built warehouse."""
    from cohortdb.cohorts.definitions import load_cohorts
    from cohortdb.cli.output import FORMATS, print_rows

    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    cohorts = load_cohorts()
    sizes = _built_sizes(ctx.obj, [c.name for c in cohorts])
    rows = [(c.name, c.index, sizes.get(c.name), len(c.dicom_conditions), c.description,
             str(c.path.name if c.path else "")) for c in cohorts]
    print_rows(["name", "index", "rows_built", "dicom_conditions", "description", "file"], rows, fmt)


def _built_sizes(settings: Settings, names: list[str]) -> dict[str, int]:
    """Row counts of the built cohort models (none when the warehouse is not built)."""
    import duckdb

    if not database_path(settings).exists() or not names:
        return {}
    from cohortdb.warehouse.duckdb import connect

    sizes: dict[str, int] = {}
    with connect(settings, read_only=True) as con:
        built = {r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'cohorts'").fetchall()}
        for name in names:
            if name in built:
                try:
                    sizes[name] = con.execute(f'select count(*) from cohorts."{name}"').fetchall()[0][0]
                except duckdb.Error:
                    continue
    return sizes
