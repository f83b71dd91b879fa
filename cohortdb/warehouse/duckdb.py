"""The embedded DuckDB target: ``<warehouse>/warehouse.duckdb``.

DuckDB lets many read-only processes or one writer open a file, never both.
So nothing ever writes the live file: ``load`` and ``build`` write the next
warehouse beside it (``warehouse.next.duckdb``) under a lock of their own, and
rename it over the live one only when it is complete (:meth:`DuckDBWarehouse.publishing`).
A reader holding the live file open keeps reading the old one; its next
connection sees the new one. Every read here opens its own read-only
connection and closes it before returning.

A user's SQL (:meth:`DuckDBWarehouse.user_query`) runs in a box: one SELECT
statement, on the warehouse attached read-only to an in-memory database, with
DuckDB's file access off and its configuration locked.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO

import duckdb
import pyarrow as pa

from cohortdb.warehouse.base import Dialect, Params, Publication, Relation, Target
from cohortdb.warehouse.guppy_fields import conforming_select
from cohortdb.warehouse.lake_tables import LakeTable, lake_tables, unified_schema
from ingest.errors import UserError
from ingest.lake import lock_every_namespace
from ingest.settings import Settings

DATABASE_FILE = "warehouse.duckdb"
NEXT_FILE = "warehouse.next.duckdb"
"""The warehouse being written by ``load`` or ``build`` (renamed over the live file when complete)."""
FAILED_FILE = "warehouse.failed.duckdb"
"""A build whose dbt step failed, kept for a look (the live warehouse is the previous one)."""
LOCK_FILE = "warehouse.lock"
"""Held by the one ``load`` or ``build`` writing the next warehouse; says who holds it."""
USER_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})
"""What a user's query may be (``SELECT``; ``FROM t``, ``DESCRIBE``, ``SHOW``, ``PRAGMA`` count as one)."""
DATABASE_PATH_ENV = "COHORTDB_DUCKDB_PATH"
"""Read by ``profiles.yml``: dbt-duckdb resolves a relative path against the cwd, not the project."""

COPY_OPTIONS = {
    "csv": "(format csv, header {header})",
    "tsv": "(format csv, header {header}, delimiter '\t')",
    "parquet": "(format parquet, compression zstd)",
}
NESTED_TYPES = frozenset({"list", "array", "struct", "map", "union"})
"""DuckDB type ids whose values a CSV or TSV cell holds as JSON."""


def database_path(settings: Settings) -> Path:
    """The embedded warehouse file of a warehouse directory."""
    return settings.warehouse_dir / DATABASE_FILE


def _one_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _failure(exc: duckdb.Error, describe: Callable[[Exception], str] = _one_line) -> BaseException:
    """What a DuckDB error means to the caller: Ctrl-C inside a query is an interrupt,
    anything else a :class:`UserError` saying ``describe(exc)`` (one line by default)."""
    if isinstance(exc, duckdb.InterruptException):
        return KeyboardInterrupt()
    return UserError(describe(exc))


_BUILT_SCHEMAS = ("marts", "cohorts", "staging", "intermediate", "reference")


def _user_error_text(exc: Exception) -> str:
    """An error in a user's query: DuckDB's whole message (its "Did you mean …" and the query
    line with a caret under the error), and what to run when a built schema is missing."""
    message = "\n".join(line for line in str(exc).strip().splitlines() if line.strip()) or type(exc).__name__
    if any(f'schema "{schema}" does not exist' in message for schema in _BUILT_SCHEMAS):
        message += "\n(the marts, cohorts and dbt layers are made by `cohortdb build`; this warehouse was only loaded)"
    return message


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def copy_relation(con: duckdb.DuckDBPyConnection, source: str, path: Path, fmt: str, *, header: bool = True) -> None:
    """Write ``source`` (a relation's SQL name) to ``path`` as ``fmt``: in CSV and TSV, a nested
    value (list, array, struct, map, union) is JSON, a boolean ``true``/``false``, NULL an empty
    cell and '' a quoted empty string (DuckDB's own text for the rest: ISO dates, ``1.5``)."""
    select = "*"
    if fmt in ("csv", "tsv"):
        relation = con.sql(f"select * from {source} limit 0")
        select = ", ".join(
            f"to_json({_identifier(name)}) as {_identifier(name)}" if kind.id in NESTED_TYPES else _identifier(name)
            for name, kind in zip(relation.columns, relation.types, strict=True))
    options = COPY_OPTIONS[fmt].format(header=str(header).lower())
    con.execute(f"copy (select {select} from {source}) to {_literal(str(path))} {options}")


def write_delimited(table: pa.Table, out: IO[str], fmt: str = "csv") -> None:
    """Write a query's result to ``out`` as CSV or TSV, each cell as :meth:`DuckDBWarehouse.export_table`
    writes it (:func:`copy_relation`), under a header of the table's own column names."""
    csv.writer(out, delimiter="\t" if fmt == "tsv" else ",", lineterminator="\n").writerow(table.column_names)
    positional = table.rename_columns([f"c{i}" for i in range(table.num_columns)])  # names may repeat
    with tempfile.TemporaryDirectory(prefix="cohortdb-") as directory, duckdb.connect(":memory:") as con:
        con.register("result_rows", positional)
        path = Path(directory) / f"rows.{fmt}"
        copy_relation(con, "result_rows", path, fmt, header=False)
        with path.open(encoding="utf-8", newline="") as text:
            shutil.copyfileobj(text, out)


def connect(settings: Settings, *, read_only: bool) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """A connection to the live warehouse file, with lock conflicts turned into a UserError.

    Raises:
        UserError: ``read_only`` and no file yet, or the file is locked by a writer.
    """
    return _open(database_path(settings), read_only=read_only)


def _no_warehouse(path: Path) -> UserError:
    """Why the warehouse file at ``path`` cannot be read yet, and what to run."""
    if not (path.parent / "lake").is_dir():
        return UserError(f"no warehouse at {path}: nothing was ingested in {path.parent} (check --warehouse); "
                         "run `cohortdb ingest dicom PATH` or `cohortdb ingest guppy …`, then `cohortdb build`")
    return UserError(f"no warehouse at {path} yet: run `cohortdb build` (or `cohortdb load` for the raw tables alone)")


@contextmanager
def _open(path: Path, *, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    if read_only and not path.exists():
        raise _no_warehouse(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        raise UserError(f"cannot open {path}: {_one_line(exc)} (is a DuckDB client writing it?)") from None
    try:
        yield con
    except duckdb.InterruptException:  # Ctrl-C inside a query: an interrupt, not a query error
        raise KeyboardInterrupt from None
    except RuntimeError as exc:  # DuckDB also reports an interrupted statement this way
        if "interrupted" in str(exc).lower():
            raise KeyboardInterrupt from None
        raise
    finally:
        con.close()


@contextmanager
def _sandbox(path: Path, *, allow_files: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory database with the warehouse attached read-only as its default catalog,
    file access off (unless ``allow_files``) and configuration locked."""
    if not path.exists():
        raise _no_warehouse(path)
    con = duckdb.connect(":memory:")
    try:
        try:
            con.execute(f"attach {_literal(str(path))} as warehouse (read_only)")
        except duckdb.IOException as exc:
            raise UserError(f"cannot open {path}: {_one_line(exc)} (is a DuckDB client writing it?)") from None
        con.execute("use warehouse")
        if not allow_files:
            con.execute("set enable_external_access = false")
        con.execute("set lock_configuration = true")
        yield con
    finally:
        con.close()


def _check_user_statement(sql: str) -> None:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise _failure(exc) from None
    if not statements:
        raise UserError("the query is empty (nothing but comments or spaces): give one SQL statement")
    if len(statements) != 1:
        raise UserError(f"give one SQL statement, not {len(statements)}")
    if statements[0].type not in USER_STATEMENTS:
        kind = statements[0].type.name.lower().replace("_", " ")
        raise UserError(f"the warehouse is read-only here: a {kind} statement is not allowed (one SELECT)")


def file_version(path: Path) -> str | None:
    """A token of the file at ``path`` that changes when another file is renamed over it
    (inode, mtime, size); None when there is none."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return f"{stat.st_ino}-{stat.st_mtime_ns}-{stat.st_size}"


class DuckDBReader:
    """The :class:`~cohortdb.warehouse.base.WarehouseReader` of a DuckDB file: an in-memory
    database with the file attached read-only as ``warehouse`` (its default catalog), file
    access off and configuration locked. Each query runs on a cursor of its own.

    A build renames a new file over the live one and never writes the old one, so the
    attached file (the old inode) stays whole and the build is never blocked.
    """

    dialect: Dialect = "duckdb"

    def __init__(self, path: Path, *, memory_limit: str = "4GB") -> None:
        for _ in range(5):  # a build may rename a new file in while it is being attached
            version = file_version(path)
            if version is None:
                raise UserError(f"no warehouse at {path}; run `cohortdb build` first")
            con = duckdb.connect(":memory:", config={"memory_limit": memory_limit})
            try:
                con.execute(f"attach {_literal(str(path))} as warehouse (read_only)")
            except duckdb.Error as exc:
                con.close()
                raise UserError(f"cannot open {path}: {_one_line(exc)}") from None
            if file_version(path) == version:
                break
            con.close()
        else:
            raise UserError(f"{path} keeps changing (is a build publishing it?); try again")
        for setting in ("enable_external_access = false", "autoinstall_known_extensions = false",
                        "autoload_known_extensions = false", "lock_configuration = true"):
            con.execute(f"set {setting}")
        self.version = version
        self.path = path
        self._con = con

    def __repr__(self) -> str:
        return f"DuckDBReader({str(self.path)!r}, version={self.version!r})"

    @contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cursor = self._con.cursor()
        try:
            cursor.execute("use warehouse")  # each cursor starts in the in-memory catalog
            yield cursor
        finally:
            cursor.close()

    def query(self, sql: str, params: Params = None) -> pa.Table:
        with self._cursor() as cursor:
            try:
                return cursor.execute(sql, list(params) if params is not None else None).to_arrow_table()
            except duckdb.Error as exc:
                raise _failure(exc) from None

    def user_query(self, sql: str, params: Params = None, *, timeout_s: float = 30.0,
                   max_rows: int = 10_000) -> tuple[pa.Table, bool]:
        _check_user_statement(sql)
        with self._cursor() as cursor:
            timer = threading.Timer(timeout_s, cursor.interrupt)
            timer.start()
            try:
                result = cursor.execute(sql, list(params) if params is not None else None)
                batches = result.to_arrow_reader(max(1, min(max_rows + 1, 100_000)))
                kept: list[pa.RecordBatch] = []
                rows = 0
                for batch in batches:
                    kept.append(batch)
                    rows += batch.num_rows
                    if rows > max_rows:
                        break
                table = pa.Table.from_batches(kept, schema=batches.schema)
            except (duckdb.Error, RuntimeError) as exc:
                if timer.finished.is_set() or isinstance(exc, duckdb.InterruptException):
                    raise UserError(f"the query ran longer than {timeout_s:g} s and was stopped") from None
                if isinstance(exc, duckdb.Error):
                    raise _failure(exc, _user_error_text) from None
                raise
            finally:
                timer.cancel()
        return table.slice(0, max_rows), table.num_rows > max_rows

    def relations(self) -> list[Relation]:
        with self._cursor() as cursor:
            found = cursor.execute("select table_schema, table_name, table_type from information_schema.tables "
                                   "where table_catalog = 'warehouse' order by table_schema, table_name").fetchall()
        return [Relation(schema, name, "view" if kind == "VIEW" else "table") for schema, name, kind in found]

    def close(self) -> None:
        self._con.close()


def _remove_database(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".wal").unlink(missing_ok=True)


class WriterLock:
    """``fcntl.flock`` on :data:`LOCK_FILE`, which then names its holder (pid, command, since):
    one load or build at a time per warehouse directory, whatever its target."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 500, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise UserError(f"{holder} is writing the warehouse in {self.path.parent}; "
                            "wait for it to finish") from None
        command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv[:3]))
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({command}, since {since})".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def lake_select(con: duckdb.DuckDBPyConnection, table: LakeTable) -> str:
    """The query of a lake table as ``raw`` holds it: its parts read by name, guppy tables
    given every declared field, columns newer than a lake's parts there as null. It may
    register ``_columns`` on ``con`` (an empty table of the schema), used by the query."""
    if table.files:
        files = ", ".join(_literal(str(f)) for f in table.files)
        columns = "*"
        if table.guppy_index is not None:
            columns = conforming_select(table.guppy_index, unified_schema(table.files))
        query = f"select {columns} from read_parquet([{files}], union_by_name = true)"
        if table.schema is not None:  # a column newer than a lake's parts is there, null
            con.register("_columns", table.schema.empty_table())
            query = f"select * from _columns union all by name {query}"
        return query
    con.register("_columns", table.empty_schema().empty_table())
    return "select * from _columns"


def load_duckdb(settings: Settings, path: Path | None = None) -> dict[str, int]:
    """Replace every ``raw`` table of the file at ``path`` (the live warehouse when None)
    with the lake's current content, in one transaction.

    Holds every lock of the lake (each DICOM shard's too), after recovering their
    interrupted transactions: it never loads half of one.

    Returns:
        Row counts by table name (``dicom_instances`` …, ``guppy_<index>``).
    """
    counts: dict[str, int] = {}
    with lock_every_namespace(settings.lake_dir), _open(path or database_path(settings), read_only=False) as con:
        con.execute("begin transaction")
        con.execute("create schema if not exists raw")
        for table in lake_tables(settings):
            target = f"raw.{table.name}"
            con.execute(f"create or replace table {target} as {lake_select(con, table)}")
            con.unregister("_columns")
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
        self.write_path = self.path
        """Where :meth:`load` and dbt write: the next warehouse inside :meth:`publishing`."""

    def load(self) -> dict[str, int]:
        return load_duckdb(self.settings, self.write_path)

    def dbt_environment(self) -> dict[str, str]:
        return {DATABASE_PATH_ENV: str(self.write_path)}

    @contextmanager
    def publishing(self, *, from_live: bool, only: Sequence[str] | None = None) -> Iterator[Publication]:
        """Write the next warehouse (``from_live``: starting as a copy of the live one, else
        empty) and rename it over the live one when the block ends, unless abandoned. The
        file is published whole, whatever ``only`` says.

        An abandoned one is kept as :data:`FAILED_FILE`; an exception (Ctrl-C included)
        removes it. Either way the live warehouse stays as it was.

        Raises:
            UserError: another ``load`` or ``build`` is writing this warehouse.
        """
        with WriterLock(self.settings.warehouse_dir / LOCK_FILE):
            next_path = self.settings.warehouse_dir / NEXT_FILE
            publication = Publication(next_path)
            _remove_database(next_path)
            if from_live and self.path.exists():
                for suffix in ("", ".wal"):
                    source = self.path.with_name(self.path.name + suffix)
                    if source.exists():
                        shutil.copyfile(source, next_path.with_name(next_path.name + suffix))
            self.write_path = next_path
            try:
                yield publication
            except BaseException:
                _remove_database(next_path)
                raise
            finally:
                self.write_path = self.path
            if publication.abandoned:
                failed = self.settings.warehouse_dir / FAILED_FILE
                _remove_database(failed)
                if next_path.exists():
                    os.replace(next_path, failed)
                publication.failed_at = str(failed)
                return
            with _open(next_path, read_only=False) as con:
                con.execute("checkpoint")  # everything in the file: a .wal must never travel with it
            next_path.with_name(next_path.name + ".wal").unlink(missing_ok=True)
            # a stale .wal of the old file would be replayed into the new one
            self.path.with_name(self.path.name + ".wal").unlink(missing_ok=True)
            os.replace(next_path, self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def version(self) -> str | None:
        return file_version(self.path)

    def reader(self) -> DuckDBReader:
        return DuckDBReader(self.path)

    def connect(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return connect(self.settings, read_only=True)

    @contextmanager
    def _result(self, sql: str, params: Params) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(self.settings, read_only=True) as con:
            try:
                yield con.execute(sql, list(params) if params is not None else None)
            except duckdb.Error as exc:
                raise _failure(exc) from None

    def user_query(self, sql: str, params: Params = None, *, allow_files: bool = False) -> pa.Table:
        _check_user_statement(sql)
        with _sandbox(self.path, allow_files=allow_files) as con:
            try:
                return con.execute(sql, list(params) if params is not None else None).to_arrow_table()
            except duckdb.Error as exc:
                raise _failure(exc, _user_error_text) from None

    def query(self, sql: str, params: Params = None) -> pa.Table:
        with self._result(sql, params) as result:
            try:
                return result.to_arrow_table()
            except duckdb.Error as exc:
                raise _failure(exc) from None

    def query_batches(self, sql: str, params: Params = None, batch_rows: int = 10_000) -> Iterator[pa.RecordBatch]:
        with self._result(sql, params) as result:
            try:
                yield from result.to_arrow_reader(batch_rows)
            except duckdb.Error as exc:
                raise _failure(exc) from None

    def relations(self) -> list[Relation]:
        table = self.query(
            "select table_schema, table_name, table_type from information_schema.tables "
            "order by table_schema, table_name"
        )
        return [Relation(schema, name, "view" if kind == "VIEW" else "table")
                for schema, name, kind in zip(*(table.column(i).to_pylist() for i in range(3)), strict=True)]

    def export_table(self, relation: Relation, path: Path, fmt: str) -> int:
        if fmt not in COPY_OPTIONS:
            raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(COPY_OPTIONS)}")
        source = self.relation_sql(relation)
        with connect(self.settings, read_only=True) as con:
            try:
                copy_relation(con, source, path, fmt)
                count = con.execute(f"select count(*) from {source}").fetchall()[0][0]
            except duckdb.Error as exc:
                raise _failure(exc) from None
        return int(count)

    def prune(self, schema: str, keep: set[str]) -> list[str]:
        with _open(self.write_path, read_only=False) as con:
            found = con.execute("select table_name, table_type from information_schema.tables "
                                "where table_schema = ? order by table_name", [schema]).fetchall()
            dropped = [name for name, _ in found if name not in keep]
            for name, kind in found:
                if name not in keep:
                    what = "view" if kind == "VIEW" else "table"
                    con.execute(f"drop {what} if exists {self.quote(schema)}.{self.quote(name)}")
        return dropped

    def quote(self, identifier: str) -> str:
        return '"' + identifier.replace('"', '""') + '"'

    def relation_sql(self, relation: Relation) -> str:
        return f"{self.quote(relation.schema)}.{self.quote(relation.name)}"
