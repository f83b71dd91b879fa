"""The warehouse seam: what every target (DuckDB today, BigQuery next) provides.

Everything downstream of the lake — exports, ``cohortdb sql``, cohorts, the
demo, the Python API, the dashboard — talks to a :class:`WarehouseTarget`,
never to a database driver. A target reads read-only and opens a new
connection per call, so no reader holds the warehouse between calls; the
dashboard holds a :class:`WarehouseReader` of one published version instead
(a published version is never written again, so holding it blocks no build).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import pyarrow as pa

from ingest.settings import Settings

Dialect = Literal["duckdb", "bigquery"]
"""The SQL dialect of a target (the guppy filter translation has one per dialect)."""

Params = Sequence[Any] | None
"""Positional query parameters, bound to ``?`` placeholders in order."""

TABLE_FORMATS = ("csv", "tsv", "parquet")
"""File formats of :meth:`WarehouseTarget.export_table`."""


class Target(enum.StrEnum):
    """The warehouse engines ``--target`` accepts."""

    DUCKDB = "duckdb"
    BIGQUERY = "bigquery"


@dataclass(frozen=True)
class Relation:
    """A table or view of the warehouse: ``schema.name``, ``kind`` is ``table`` or ``view``."""

    schema: str
    name: str
    kind: str


class Publication:
    """The next warehouse being written; :meth:`abandon` keeps it unpublished (a failed build).

    ``path`` is its file (None on an engine without one: BigQuery's); ``failed_at`` is where
    an abandoned one was kept (a file, datasets), once the block has ended.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.abandoned = False
        self.failed_at: str | None = None

    def abandon(self) -> None:
        self.abandoned = True


class WarehouseReader(Protocol):
    """A long-lived read-only view of one published version of the warehouse (a dashboard's).

    It keeps reading that version, whole, however often the warehouse is rebuilt
    meanwhile (a build publishes a new file and never writes this one), and never
    blocks a build. Safe to use from several threads at once. Everything runs as a
    user's query does: read-only, no access to files, configuration locked.
    """

    version: str
    """The version it reads (:meth:`WarehouseTarget.version` when it was opened)."""
    dialect: Dialect
    """The SQL dialect its queries are written in."""

    def query(self, sql: str, params: Params = None) -> pa.Table:
        """The whole result of a query the product wrote, as an Arrow table. Relations are
        named ``schema.name`` (``marts.imaging_studies``) on every target."""
        ...

    def user_query(self, sql: str, params: Params = None, *, timeout_s: float = 30.0,
                   max_rows: int = 10_000) -> tuple[pa.Table, bool]:
        """One SELECT a user wrote: its first ``max_rows`` rows, and whether there were more.

        Raises:
            UserError: not one SELECT, a query that reaches for what the box forbids,
                an error in it, or ``timeout_s`` seconds passed (the query is stopped).
        """
        ...

    def relations(self) -> list[Relation]:
        """Every table and view of this version, sorted by schema then name."""
        ...

    def close(self) -> None:
        """Let go of the version (its file may then be gone from disk for good)."""
        ...


class WarehouseTarget(Protocol):
    """One warehouse engine. Methods raise :class:`~ingest.errors.UserError` for
    anything a user can fix (no warehouse yet, a bad query, a lock held by a writer)."""

    target: Target
    dialect: Dialect
    settings: Settings
    location: str
    """Where the warehouse lives, for messages (a file path, a project.dataset)."""

    def load(self) -> dict[str, int]:
        """Replace the ``raw`` schema with the lake's content; row counts by table name."""
        ...

    def publishing(self, *, from_live: bool,
                   only: Sequence[str] | None = None) -> AbstractContextManager[Publication]:
        """Write the next warehouse (a copy of the live one when ``from_live``, else empty)
        while the block runs — :meth:`load` and dbt write there — and make it the live one,
        atomically, when the block ends; unless abandoned (kept aside) or an exception
        ends the block (discarded). Readers never wait for it nor see it half-built.

        ``only``: the schemas the block writes, whole (``raw`` for a load); an engine that
        publishes schema by schema then copies and replaces those alone.

        Raises:
            UserError: another writer holds the warehouse.
        """
        ...

    def dbt_environment(self) -> dict[str, str]:
        """The environment variables ``profiles.yml`` reads for this target (absolute paths, names)."""
        ...

    def exists(self) -> bool:
        """Whether anything has been loaded (a read would not fail for want of a warehouse)."""
        ...

    def version(self) -> str | None:
        """An opaque token of the published warehouse that changes whenever a load or build
        publishes a new one; None when nothing is loaded. Cheap (no connection)."""
        ...

    def reader(self) -> WarehouseReader:
        """A :class:`WarehouseReader` of the version published now.

        Raises:
            UserError: nothing is loaded yet, or the warehouse cannot be opened.
        """
        ...

    def connect(self) -> AbstractContextManager[Any]:
        """A read-only connection of the engine's own driver (for what the seam does not cover)."""
        ...

    def query(self, sql: str, params: Params = None) -> pa.Table:
        """The whole result of a read-only query the product wrote, as an Arrow table."""
        ...

    def user_query(self, sql: str, params: Params = None, *, allow_files: bool = False) -> pa.Table:
        """:meth:`query` for SQL a user wrote: one SELECT, read-only, no access to files
        (unless ``allow_files``) nor to the engine's configuration.

        Raises:
            UserError: several statements, a statement that is not a query, or a query
                that reaches for what the box forbids.
        """
        ...

    def query_batches(self, sql: str, params: Params = None, batch_rows: int = 10_000) -> Iterator[pa.RecordBatch]:
        """A read-only query's result in record batches of at most ``batch_rows`` rows."""
        ...

    def relations(self) -> list[Relation]:
        """Every table and view, sorted by schema then name."""
        ...

    def export_table(self, relation: Relation, path: Path, fmt: str) -> int:
        """Write ``relation`` to ``path`` as ``fmt`` (one of :data:`TABLE_FORMATS`); the row count.

        In CSV/TSV lists, structs and maps are JSON, booleans ``true``/``false``, NULL an empty
        cell and '' a quoted empty one (as ``cohortdb sql --format csv`` prints them); Parquet keeps them nested.
        ``path`` is written in place; callers rename it into place.
        """
        ...

    def prune(self, schema: str, keep: set[str]) -> list[str]:
        """Drop the tables and views of ``schema`` not named in ``keep``, in the warehouse
        being written; the names dropped."""
        ...

    def quote(self, identifier: str) -> str:
        """``identifier`` quoted for this dialect."""
        ...

    def relation_sql(self, relation: Relation) -> str:
        """How a query names ``relation`` on this target (quoted)."""
        ...
