"""The embedded DuckDB target: ``<warehouse>/warehouse.duckdb``.

DuckDB lets many read-only processes or one writer open a file, never both;
every read here opens its own read-only connection and closes it before
returning, so readers hold the file only while a query runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from cohortdb.warehouse.base import Dialect, Params, Relation, Target
from cohortdb.warehouse.guppy_fields import conforming_select
from cohortdb.warehouse.lake_tables import lake_tables, unified_schema
from ingest.errors import UserError
from ingest.lake import lock_every_namespace
from ingest.settings import Settings

DATABASE_FILE = "warehouse.duckdb"
DATABASE_PATH_ENV = "COHORTDB_DUCKDB_PATH"
"""Read by ``profiles.yml``: dbt-duckdb resolves a relative path against the cwd, not the project."""

_COPY_OPTIONS = {
    "csv": "(format csv, header true)",
    "tsv": "(format csv, header true, delimiter '\t')",
    "parquet": "(format parquet, compression zstd)",
}


def database_path(settings: Settings) -> Path:
    """The embedded warehouse file of a warehouse directory."""
    return settings.warehouse_dir / DATABASE_FILE


def _one_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@contextmanager
def connect(settings: Settings, *, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse file, with lock conflicts turned into a UserError.

    Raises:
        UserError: ``read_only`` and no file yet, or the file is locked by a writer.
    """
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
                files = ", ".join(_literal(str(f)) for f in table.files)
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


class DuckDBWarehouse:
    """The :class:`~cohortdb.warehouse.base.WarehouseTarget` of an embedded DuckDB file."""

    target = Target.DUCKDB
    dialect: Dialect = "duckdb"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = database_path(settings)
        self.location = str(self.path)

    def load(self) -> dict[str, int]:
        return load_duckdb(self.settings)

    def dbt_environment(self) -> dict[str, str]:
        return {DATABASE_PATH_ENV: str(self.path)}

    def exists(self) -> bool:
        return self.path.exists()

    def connect(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return connect(self.settings, read_only=True)

    @contextmanager
    def _result(self, sql: str, params: Params) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(self.settings, read_only=True) as con:
            try:
                yield con.execute(sql, list(params) if params is not None else None)
            except duckdb.Error as exc:
                raise UserError(_one_line(exc)) from None

    def query(self, sql: str, params: Params = None) -> pa.Table:
        with self._result(sql, params) as result:
            try:
                return result.to_arrow_table()
            except duckdb.Error as exc:
                raise UserError(_one_line(exc)) from None

    def query_batches(self, sql: str, params: Params = None, batch_rows: int = 10_000) -> Iterator[pa.RecordBatch]:
        with self._result(sql, params) as result:
            try:
                yield from result.to_arrow_reader(batch_rows)
            except duckdb.Error as exc:
                raise UserError(_one_line(exc)) from None

    def relations(self) -> list[Relation]:
        table = self.query(
            "select table_schema, table_name, table_type from information_schema.tables "
            "order by table_schema, table_name"
        )
        return [Relation(schema, name, "view" if kind == "VIEW" else "table")
                for schema, name, kind in zip(*(table.column(i).to_pylist() for i in range(3)), strict=True)]

    def export_table(self, relation: Relation, path: Path, fmt: str) -> int:
        if fmt not in _COPY_OPTIONS:
            raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(_COPY_OPTIONS)}")
        source = self.relation_sql(relation)
        with connect(self.settings, read_only=True) as con:
            try:
                con.execute(f"copy (select * from {source}) to {_literal(str(path))} {_COPY_OPTIONS[fmt]}")
                count = con.execute(f"select count(*) from {source}").fetchall()[0][0]
            except duckdb.Error as exc:
                raise UserError(_one_line(exc)) from None
        return int(count)

    def quote(self, identifier: str) -> str:
        return '"' + identifier.replace('"', '""') + '"'

    def relation_sql(self, relation: Relation) -> str:
        return f"{self.quote(relation.schema)}.{self.quote(relation.name)}"
