"""Load the lake into ``<warehouse>/warehouse.duckdb``, schema ``raw``; idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ingest.errors import UserError
from ingest.lake import lock_every_namespace
from cohortdb.warehouse.guppy_fields import conforming_select
from cohortdb.warehouse.lake_tables import lake_tables, unified_schema
from ingest.settings import Settings


DATABASE_FILE = "warehouse.duckdb"


def database_path(settings: Settings) -> Path:
    """The embedded warehouse file of a warehouse directory."""
    return settings.warehouse_dir / DATABASE_FILE


def _one_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@contextmanager
def connect(settings: Settings, *, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse file, with lock conflicts turned into a UserError."""
    path = database_path(settings)
    if read_only and not path.exists():
        raise UserError(f"no warehouse at {path}; run `cohortdb load` first")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        raise UserError(f"cannot open {path}: {_one_line(exc)} (is the dashboard or dbt using it?)") from None
    try:
        yield con
    finally:
        con.close()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def load_duckdb(settings: Settings) -> dict[str, int]:
    """Replace every ``raw`` table with the lake's current content, in one transaction.

    Holds every lock of the lake (each DICOM shard's too), after recovering their
    interrupted transactions: it never loads half of one.

    Returns:
        Row counts by table name (``dicom_instances`` …, ``guppy_<index>``).
    """
    counts: dict[str, int] = {}
    with lock_every_namespace(settings.lake_dir), connect(settings, read_only=False) as con:
        con.execute("begin transaction")
        con.execute("create schema if not exists raw")
        for table in lake_tables(settings):
            target = f"raw.{table.name}"
            if table.files:
                files = ", ".join(_quote(str(f)) for f in table.files)
                columns = "*"
                if table.guppy_index is not None:
                    columns = conforming_select(table.guppy_index, unified_schema(table.files))
                con.execute(
                    f"create or replace table {target} as "
                    f"select {columns} from read_parquet([{files}], union_by_name = true)"
                )
            else:
                con.register("_empty", table.empty_schema().empty_table())
                con.execute(f"create or replace table {target} as select * from _empty")
                con.unregister("_empty")
            counts[table.name] = con.execute(f"select count(*) from {target}").fetchall()[0][0]
        con.execute("commit")
    return counts
