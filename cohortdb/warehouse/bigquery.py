"""The BigQuery target: the warehouse as datasets ``<prefix>_raw``, ``<prefix>_staging``, …
``<prefix>_marts``, ``<prefix>_cohorts`` of one project.

Load: each lake table is first conformed exactly as the DuckDB load does it (the same
select over the same Parquet parts, run by an in-memory DuckDB that streams it to one
Parquet file), then loaded by one load job with an explicit schema made from that file's
Arrow schema. A load replaces the tables only once every table has loaded: each goes to a
staging table first, then is swapped in, clustered where queries select by it.

Build: the same dbt project through dbt-bigquery (the ``bigquery`` output of
``profiles.yml``), into the datasets of the next warehouse (``<prefix>__next_*``), copied
over the live ones only when dbt succeeded (:meth:`BigQueryWarehouse.publishing`).

Reads: a query names ``marts.x`` as on DuckDB; the user's box rewrites those names to the
prefixed datasets (sqlglot) and lets only a SELECT through (BigQuery's own dry run says
what a statement is). Results come back as Arrow over the REST API (no Storage API).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import functools
import os
import socket
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from cohortdb.warehouse.base import Dialect, Params, Publication, Relation, Target
from cohortdb.warehouse.duckdb import COPY_OPTIONS, LOCK_FILE, WriterLock, copy_relation, lake_select
from cohortdb.warehouse.lake_tables import LakeTable, lake_tables
from ingest.errors import UserError
from ingest.lake import lock_every_namespace
from ingest.settings import Settings

PROJECT_ENV = "COHORTDB_BQ_PROJECT"
PREFIX_ENV = "COHORTDB_BQ_DATASET_PREFIX"
LOCATION_ENV = "COHORTDB_BQ_LOCATION"
EMULATOR_ENV = "BIGQUERY_EMULATOR_HOST"
STAGING_SUFFIX = "__staging"
NEXT_SUFFIX = "__next"
TRANSACTION_TABLES = 100
"""The most tables one BigQuery transaction may change."""
VERSION_TABLES = (Relation("marts", "imaging_studies", "table"), Relation("raw", "dicom_instances", "table"),
                  Relation("raw", "guppy_imaging_study", "table"))
"""Whose label says which publication is live: the first that exists."""
VERSION_LABEL = "cohortdb_published"
"""The next warehouse's datasets are ``<prefix>__next_<schema>`` while a load or build writes them."""
GOOGLE_ENDPOINT = "https://bigquery.googleapis.com"
SCHEMAS = ("raw", "staging", "intermediate", "marts", "cohorts", "reference")
"""The warehouse's schemas; on BigQuery each is the dataset ``<prefix>_<schema>``."""

CLUSTERING: dict[str, list[str]] = {
    "dicom_elements": ["tag", "sop_instance_uid"],
    "dicom_instances": ["study_instance_uid", "series_instance_uid"],
    "guppy_imaging_study": ["study_uid"],
    "guppy_case": ["submitter_id"],
}
"""The raw tables' clustering columns, those present and scalar (a commons may make a field
a list): what the models and cohorts select by."""


@dataclass(frozen=True)
class BigQueryConfig:
    """Where the warehouse lives: ``project``, datasets ``<dataset_prefix>_raw`` …, and the API
    endpoint (``None``: Google's; an emulator's ``http://127.0.0.1:PORT``)."""

    project: str
    dataset_prefix: str
    location: str | None = None
    api_endpoint: str | None = None

    def dataset(self, schema: str) -> str:
        return f"{self.dataset_prefix}_{schema}"

    @property
    def anonymous(self) -> bool:
        """Whether requests carry no Google credentials (an endpoint of its own: an emulator)."""
        return self.api_endpoint is not None and self.api_endpoint.rstrip("/") != GOOGLE_ENDPOINT


def config_from(project: str | None, dataset_prefix: str | None, location: str | None = None,
                api_endpoint: str | None = None) -> BigQueryConfig:
    """The options, else ``$COHORTDB_BQ_PROJECT``, ``$COHORTDB_BQ_DATASET_PREFIX``,
    ``$COHORTDB_BQ_LOCATION`` and ``$BIGQUERY_EMULATOR_HOST`` (a scheme is added when it has none).

    Raises:
        UserError: no project or no dataset prefix.
    """
    project = project or os.environ.get(PROJECT_ENV)
    prefix = dataset_prefix or os.environ.get(PREFIX_ENV)
    if not project or not prefix:
        raise UserError(f"--target bigquery needs --project and --dataset-prefix (or ${PROJECT_ENV} and "
                        f"${PREFIX_ENV})")
    endpoint = api_endpoint or os.environ.get(EMULATOR_ENV)
    if endpoint and "://" not in endpoint:
        endpoint = f"http://{endpoint}"
    return BigQueryConfig(project, prefix, location or os.environ.get(LOCATION_ENV) or None, endpoint)


def config_environment(config: BigQueryConfig) -> dict[str, str]:
    """The environment :func:`config_from` reads ``config`` back from (for a child process,
    such as the dashboard's server); credentials are not in it."""
    environment = {PROJECT_ENV: config.project, PREFIX_ENV: config.dataset_prefix}
    if config.location:
        environment[LOCATION_ENV] = config.location
    if config.api_endpoint:
        environment[EMULATOR_ENV] = config.api_endpoint
    return environment


def client(config: BigQueryConfig) -> Any:
    """A ``google.cloud.bigquery.Client``: the standard Google credentials, or none for an
    endpoint of its own (an emulator), which must answer a connection first.

    Raises:
        UserError: the endpoint of its own cannot be reached (the client would retry for 10 minutes).
    """
    from google.api_core.client_options import ClientOptions
    from google.cloud import bigquery

    if not config.anonymous:
        return bigquery.Client(project=config.project, location=config.location)
    from google.auth.credentials import AnonymousCredentials

    _check_reachable(str(config.api_endpoint))

    return bigquery.Client(project=config.project, location=config.location, credentials=AnonymousCredentials(),
                           client_options=ClientOptions(api_endpoint=config.api_endpoint))


def _check_reachable(url: str, timeout_s: float = 5.0) -> None:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=timeout_s).close()
    except OSError as exc:
        raise UserError(f"cannot reach the BigQuery API at {url}: {exc.strerror or exc}") from None


_SCALARS: dict[str, str] = {
    "bool": "BOOL", "int8": "INT64", "int16": "INT64", "int32": "INT64", "int64": "INT64",
    "uint8": "INT64", "uint16": "INT64", "uint32": "INT64", "halffloat": "FLOAT64", "float": "FLOAT64",
    "double": "FLOAT64", "string": "STRING", "large_string": "STRING", "binary": "BYTES",
    "large_binary": "BYTES", "date32[day]": "DATE",
}


def bq_fields(schema: pa.Schema) -> list[Any]:
    """BigQuery ``SchemaField``s of an Arrow schema: a list is REPEATED, a struct a RECORD, a
    list of structs a REPEATED RECORD, timestamps with a zone TIMESTAMP, without DATETIME.

    Raises:
        UserError: a type BigQuery cannot hold as it is (a list of lists, uint64, …).
    """
    return [_field(f.name, f.type) for f in schema]


def _field(name: str, kind: pa.DataType, mode: str = "NULLABLE") -> Any:
    from google.cloud.bigquery import SchemaField

    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        if mode == "REPEATED":
            raise UserError(f"column {name}: a list of lists cannot be loaded into BigQuery")
        return _field(name, kind.value_type, "REPEATED")
    if pa.types.is_struct(kind):
        return SchemaField(name, "RECORD", mode=mode,
                           fields=[_field(kind.field(i).name, kind.field(i).type) for i in range(kind.num_fields)])
    if pa.types.is_timestamp(kind):
        return SchemaField(name, "TIMESTAMP" if kind.tz else "DATETIME", mode=mode)
    if pa.types.is_time(kind):
        return SchemaField(name, "TIME", mode=mode)
    if pa.types.is_decimal(kind):
        return SchemaField(name, "NUMERIC" if kind.precision <= 38 else "BIGNUMERIC", mode=mode)
    scalar = _SCALARS.get(str(kind))
    if scalar is None:
        raise UserError(f"column {name}: Arrow type {kind} has no BigQuery type here")
    return SchemaField(name, scalar, mode=mode)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def without_null_items(value: str, kind: pa.DataType, depth: int = 0) -> str | None:
    """A DuckDB expression of ``value`` (SQL of Arrow type ``kind``) with the NULL items of
    every list in it dropped, at any depth; None when it holds no list (nothing to drop).
    BigQuery stores no NULL array element, and to guppy a NULL item is no data anyway."""
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        item = f"item{depth}"
        inner = without_null_items(item, kind.value_type, depth + 1)
        kept = f"list_filter({value}, lambda {item}: {item} is not null)"
        return f"list_transform({kept}, lambda {item}: {inner})" if inner else kept
    if pa.types.is_struct(kind):
        fields = [kind.field(i) for i in range(kind.num_fields)]
        parts = [(f, without_null_items(f"{value}.{_quoted(f.name)}", f.type, depth)) for f in fields]
        if not any(expression for _, expression in parts):
            return None
        packed = ", ".join(f"{_quoted(f.name)} := {expression or f'{value}.{_quoted(f.name)}'}"
                           for f, expression in parts)
        return f"case when {value} is null then null else struct_pack({packed}) end"
    return None


def _conformed_parquet(table: LakeTable, out: Path) -> pa.Schema:
    """Stream one lake table, conformed as the DuckDB load conforms it and without NULL list
    items (:func:`without_null_items`), to ``out``."""
    with duckdb.connect(":memory:") as con:
        select = lake_select(con, table)
        schema = con.execute(f"select * from ({select}) limit 0").to_arrow_table().schema
        columns = []
        for field in schema:
            expression = without_null_items(_quoted(field.name), field.type)
            columns.append(f"{expression} as {_quoted(field.name)}" if expression else _quoted(field.name))
        con.execute(f"copy (select {', '.join(columns)} from ({select})) to '{out}' "
                    "(format parquet, compression zstd)")
    return pq.read_schema(out)


def load_bigquery(settings: Settings, config: BigQueryConfig, bq: Any | None = None) -> dict[str, int]:
    """Replace every ``<prefix>_raw`` table with the lake's current content.

    Every table is loaded into ``<name>__staging`` first; the live tables are replaced only
    when all have loaded, so a failed load (a bad schema, a server error) leaves them as
    they were. Returns row counts by table name.

    Raises:
        UserError: a lake type BigQuery cannot hold, or the API refused a request.
    """
    from google.api_core.exceptions import GoogleAPIError
    from google.cloud import bigquery

    bq = bq or client(config)
    dataset = f"{config.project}.{config.dataset('raw')}"
    counts: dict[str, int] = {}
    staged: list[str] = []
    try:
        bq.create_dataset(new_dataset(config, dataset), exists_ok=True)
        with lock_every_namespace(settings.lake_dir), tempfile.TemporaryDirectory(prefix="cohortdb-bq-") as tmp:
            for table in lake_tables(settings):
                part = Path(tmp) / f"{table.name}.parquet"
                schema = _conformed_parquet(table, part)
                job_config = bigquery.LoadJobConfig(
                    source_format=bigquery.SourceFormat.PARQUET, schema=bq_fields(schema),
                    write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE)
                job_config.parquet_options = bigquery.ParquetOptions()
                job_config.parquet_options.enable_list_inference = True
                target = f"{dataset}.{table.name}{STAGING_SUFFIX}"
                with part.open("rb") as handle:
                    bq.load_table_from_file(handle, target, job_config=job_config).result()
                staged.append(table.name)
                part.unlink()
            for name in staged:
                _replace_table(bq, f"{dataset}.{name}{STAGING_SUFFIX}", f"{dataset}.{name}")
                bq.delete_table(f"{dataset}.{name}{STAGING_SUFFIX}", not_found_ok=True)
                counts[name] = bq.get_table(f"{dataset}.{name}").num_rows
    except GoogleAPIError as exc:
        _drop_staged(bq, dataset, staged)
        raise UserError(f"BigQuery refused the load: {str(exc).strip().splitlines()[0]}") from None
    except BaseException:
        _drop_staged(bq, dataset, staged)
        raise
    return counts


def new_dataset(config: BigQueryConfig, dataset_id: str) -> Any:
    """A ``bigquery.Dataset`` to create, in the configured location (BigQuery's default: US)."""
    from google.cloud import bigquery

    dataset = bigquery.Dataset(dataset_id)
    dataset.location = config.location or "US"
    return dataset


def _replace_table(bq: Any, source: str, target: str) -> None:
    """``CREATE OR REPLACE`` table ``target`` as a copy of ``source`` (``project.dataset.name``
    both), clustered as :data:`CLUSTERING` says for its name (on its scalar columns)."""
    columns = {f.name for f in bq.get_table(source).schema
               if f.mode != "REPEATED" and f.field_type not in ("RECORD", "STRUCT")}
    cluster = [c for c in CLUSTERING.get(target.rsplit(".", 1)[-1], []) if c in columns]
    clause = f"cluster by {', '.join(cluster)} " if cluster else ""
    bq.query(f"create or replace table `{target}` {clause}as select * from `{source}`").result()


def _swap_transaction(pairs: Sequence[tuple[str, str]]) -> str:
    """One multi-statement transaction that replaces the rows of each ``target`` by those of its
    ``source`` (``(source, target)`` table ids of equal columns): all of them, or none."""
    steps = "".join(f"truncate table `{target}`;\ninsert into `{target}` select * from `{source}`;\n"
                    for source, target in pairs)
    return f"begin transaction;\n{steps}commit transaction;"


def _drop_staged(bq: Any, dataset: str, staged: list[str]) -> None:
    """Delete the staging tables of a load that failed (the live tables were not touched)."""
    for name in staged:
        try:
            bq.delete_table(f"{dataset}.{name}{STAGING_SUFFIX}", not_found_ok=True)
        except Exception:  # noqa: BLE001 - the load's own error is the one to report
            continue


def _api_error(exc: Exception) -> UserError:
    """A refused request as one line: BigQuery's own message, without the HTTP preamble."""
    errors = getattr(exc, "errors", None) or []
    message = errors[0].get("message") if errors and isinstance(errors[0], dict) else None
    text = (message or getattr(exc, "message", None) or str(exc)).strip()
    return UserError(text.splitlines()[0] if text else type(exc).__name__)


def _parameter(value: Any) -> Any:
    """A positional query parameter of ``value``'s BigQuery type (a list: an ARRAY of its items' type)."""
    from google.cloud import bigquery

    if isinstance(value, list | tuple):
        kinds = {_scalar_type(item) for item in value if item is not None}
        return bigquery.ArrayQueryParameter(None, kinds.pop() if len(kinds) == 1 else "STRING", list(value))
    return bigquery.ScalarQueryParameter(None, _scalar_type(value), value)


def _scalar_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, decimal.Decimal):
        return "NUMERIC"
    if isinstance(value, dt.datetime):
        return "TIMESTAMP" if value.tzinfo else "DATETIME"
    if isinstance(value, dt.date):
        return "DATE"
    if isinstance(value, bytes):
        return "BYTES"
    return "STRING"


@functools.lru_cache(maxsize=1024)
def _qualified(sql: str, config: BigQueryConfig) -> str:
    """:func:`qualify`, remembered: a dashboard sends the same texts again and again."""
    return qualify(sql, config)


def qualify(sql: str, config: BigQueryConfig) -> str:
    """``sql`` (GoogleSQL) with every table named by a warehouse schema (``marts.x``) renamed to
    its dataset (`` `project.<prefix>_marts.x` ``); names already qualified otherwise are kept.

    Raises:
        UserError: not one statement, or sqlglot cannot parse it as GoogleSQL.
    """
    import sqlglot
    from sqlglot import exp

    try:
        statements = [s for s in sqlglot.parse(sql, read="bigquery") if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise UserError(f"not GoogleSQL: {str(exc).strip().splitlines()[0]}") from None
    if not statements:
        raise UserError("the query is empty (nothing but comments or spaces): give one SQL statement")
    if len(statements) != 1:
        raise UserError(f"give one SQL statement, not {len(statements)}")
    tree = statements[0]
    for table in tree.find_all(exp.Table):
        if not table.catalog and table.db in SCHEMAS:
            table.set("catalog", exp.to_identifier(config.project))
            table.set("db", exp.to_identifier(config.dataset(table.db)))
    return tree.sql(dialect="bigquery")


class BigQueryReader:
    """The :class:`~cohortdb.warehouse.base.WarehouseReader` of a BigQuery warehouse.

    BigQuery tables are replaced in place, so unlike a DuckDB reader it cannot hold one
    version: it reads what is there now, and :attr:`version` is the one seen when opened.
    Queries name relations ``schema.name``, as on DuckDB (:func:`qualify` renames them).
    """

    dialect: Dialect = "bigquery"

    def __init__(self, warehouse: BigQueryWarehouse) -> None:
        self._warehouse = warehouse
        version = warehouse.version()
        if version is None:
            raise UserError(f"no warehouse in {warehouse.location}; run `cohortdb build --target bigquery` first")
        self.version = version

    def query(self, sql: str, params: Params = None) -> pa.Table:
        return self._warehouse.query(_qualified(sql, self._warehouse.config), params)

    def user_query(self, sql: str, params: Params = None, *, timeout_s: float = 30.0,
                   max_rows: int = 10_000) -> tuple[pa.Table, bool]:
        table = self._warehouse.user_query(sql, params, timeout_s=timeout_s, max_rows=max_rows + 1)
        return table.slice(0, max_rows), table.num_rows > max_rows

    def relations(self) -> list[Relation]:
        return self._warehouse.relations()

    def close(self) -> None:
        return None


class BigQueryWarehouse:
    """The :class:`~cohortdb.warehouse.base.WarehouseTarget` of datasets ``<prefix>_*`` of a project."""

    target = Target.BIGQUERY
    dialect: Dialect = "bigquery"

    def __init__(self, settings: Settings, config: BigQueryConfig) -> None:
        self.settings = settings
        self.config = config
        self.location = f"{config.project}.{config.dataset_prefix}_*"
        self.write_prefix = config.dataset_prefix
        """Whose datasets :meth:`load`, dbt and :meth:`prune` write: the next warehouse's inside
        :meth:`publishing`."""
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client(self.config)
        return self._client

    def _table_id(self, relation: Relation) -> str:
        return f"{self.config.project}.{self.config.dataset(relation.schema)}.{relation.name}"

    def load(self) -> dict[str, int]:
        return load_bigquery(self.settings, dataclasses.replace(self.config, dataset_prefix=self.write_prefix),
                             self.client)

    @contextmanager
    def publishing(self, *, from_live: bool, only: Sequence[str] | None = None) -> Iterator[Publication]:
        """Write the next warehouse into datasets ``<prefix>__next_*`` (``from_live``: starting
        as a copy of the live one), then publish it over the live datasets (:meth:`_publish`)
        and drop it; unless abandoned (kept as it is, for a look) or an exception ends the
        block (dropped). The live datasets are not touched before the next one is complete.
        With ``only`` (a load: ``raw``), nothing is copied in and only those schemas are replaced.
        """
        with WriterLock(self.settings.warehouse_dir / LOCK_FILE):  # one writer per directory
            live, next_prefix = self.config.dataset_prefix, self.config.dataset_prefix + NEXT_SUFFIX
            self._drop_prefix(next_prefix)  # what a killed build left
            schemas = tuple(only) if only is not None else SCHEMAS
            if from_live and only is None:
                self._replicate(live, next_prefix, SCHEMAS)
            publication = Publication()
            self.write_prefix = next_prefix
            try:
                yield publication
            except BaseException:
                self._drop_prefix(next_prefix)
                raise
            finally:
                self.write_prefix = live
            if publication.abandoned:
                publication.failed_at = f"{self.config.project}.{next_prefix}_*"
                return
            self._publish(next_prefix, live, schemas)
            self._stamp()
            self._drop_prefix(next_prefix)

    def _dataset_id(self, prefix: str, schema: str) -> str:
        return f"{self.config.project}.{prefix}_{schema}"

    def _tables(self, prefix: str, schema: str) -> list[Any]:
        """The tables and views of a dataset (none when it does not exist), staging tables aside."""
        from google.api_core.exceptions import NotFound

        try:
            return [t for t in self.client.list_tables(self._dataset_id(prefix, schema))
                    if not t.table_id.endswith(STAGING_SUFFIX)]
        except NotFound:
            return []

    def _replicate(self, source: str, target: str, schemas: Sequence[str]) -> None:
        """Copy the tables and views of the ``schemas`` datasets of prefix ``source`` into those of
        ``target`` (the start of a build: the next warehouse begins as the live one)."""
        from google.api_core.exceptions import GoogleAPIError

        try:
            for schema in schemas:
                found = self._tables(source, schema)
                if not found:
                    continue
                self.client.create_dataset(new_dataset(self.config, self._dataset_id(target, schema)), exists_ok=True)
                for table in (t for t in found if t.table_type != "VIEW"):
                    _replace_table(self.client, f"{self._dataset_id(source, schema)}.{table.table_id}",
                                   f"{self._dataset_id(target, schema)}.{table.table_id}")
                self._recreate_views(source, target, schema, found)
        except GoogleAPIError as exc:
            raise _api_error(exc) from None

    def _publish(self, source: str, target: str, schemas: Sequence[str]) -> None:
        """Make the ``schemas`` datasets of prefix ``target`` (the live warehouse) hold what those
        of ``source`` (the next one) hold.

        Every table that exists on both sides with the same columns is replaced inside one
        multi-statement transaction (``TRUNCATE`` and ``INSERT … SELECT``), so a reader sees
        all those tables old or all new, never a mix; BigQuery lets a transaction change at
        most :data:`TRANSACTION_TABLES` tables, so a larger warehouse takes several. A table
        new to the live side is created before the transaction (no reader of the old version
        names it); one whose columns changed (a cohortdb upgrade) is replaced by
        ``CREATE OR REPLACE`` after it. Then views are recreated and what ``source`` lacks is
        dropped. A live table keeps the clustering it was created with.
        """
        from google.api_core.exceptions import GoogleAPIError

        try:
            in_step: list[tuple[str, str]] = []
            after: list[tuple[str, str, bool]] = []
            found = {schema: self._tables(source, schema) for schema in schemas}
            for schema, tables in found.items():
                self.client.create_dataset(new_dataset(self.config, self._dataset_id(target, schema)), exists_ok=True)
                live = {t.table_id: t for t in self._tables(target, schema)}
                for table in (t for t in tables if t.table_type != "VIEW"):
                    from_id = f"{self._dataset_id(source, schema)}.{table.table_id}"
                    to_id = f"{self._dataset_id(target, schema)}.{table.table_id}"
                    current = live.get(table.table_id)
                    if current is None:
                        _replace_table(self.client, from_id, to_id)
                    elif current.table_type != "VIEW" and \
                            self.client.get_table(from_id).schema == self.client.get_table(to_id).schema:
                        in_step.append((from_id, to_id))
                    else:
                        after.append((from_id, to_id, current.table_type == "VIEW"))
            for first in range(0, len(in_step), TRANSACTION_TABLES):
                self.client.query(_swap_transaction(in_step[first:first + TRANSACTION_TABLES])).result()
            for from_id, to_id, was_view in after:
                if was_view:
                    self.client.delete_table(to_id, not_found_ok=True)
                _replace_table(self.client, from_id, to_id)
            for schema, tables in found.items():
                self._recreate_views(source, target, schema, tables)
                names = {t.table_id for t in tables}
                for stale in self._tables(target, schema):
                    if stale.table_id not in names:
                        self.client.delete_table(stale.reference, not_found_ok=True)
        except GoogleAPIError as exc:
            raise _api_error(exc) from None

    def _recreate_views(self, source: str, target: str, schema: str, found: Sequence[Any]) -> None:
        """The views among ``found`` (of dataset ``source``'s ``schema``), recreated in ``target``'s,
        reading ``target``'s tables."""
        if not any(t.table_type == "VIEW" for t in found):
            return
        views = self.client.query("select table_name, view_definition from "
                                  f"`{self._dataset_id(source, schema)}.INFORMATION_SCHEMA.VIEWS`")
        for name, definition in views.result():
            query = definition.replace(f"`{source}_", f"`{target}_")  # dbt quotes each part
            self.client.query(f"create or replace view `{self._dataset_id(target, schema)}.{name}` "
                              f"as {query}").result()

    def _drop_prefix(self, prefix: str) -> None:
        for schema in SCHEMAS:
            self.client.delete_dataset(self._dataset_id(prefix, schema), delete_contents=True, not_found_ok=True)

    def dbt_environment(self) -> dict[str, str]:
        environment = {
            "COHORTDB_BQ_PROJECT": self.config.project,
            "COHORTDB_BQ_DATASET_PREFIX": self.write_prefix,
            "COHORTDB_BQ_LOCATION": self.config.location or "US",
            "COHORTDB_BQ_API_ENDPOINT": self.config.api_endpoint or GOOGLE_ENDPOINT,
            "COHORTDB_BQ_METHOD": "oauth",
        }
        if self.config.anonymous:  # a static token that never refreshes: nothing goes to Google
            environment |= {"COHORTDB_BQ_METHOD": "oauth-secrets", "COHORTDB_BQ_TOKEN": "emulator"}
        return environment

    def exists(self) -> bool:
        return self.version() is not None

    def _version_table(self) -> Any | None:
        """The first of :data:`VERSION_TABLES` that exists (None: nothing is loaded)."""
        from google.api_core.exceptions import GoogleAPIError, NotFound

        for relation in VERSION_TABLES:
            try:
                return self.client.get_table(self._table_id(relation))
            except NotFound:
                continue
            except GoogleAPIError as exc:
                raise _api_error(exc) from None
        return None

    def version(self) -> str | None:
        """Which publication is live: the stamp (and modification time) of the first of
        :data:`VERSION_TABLES` there is, which every load and build stamps when it publishes."""
        table = self._version_table()
        if table is None:
            return None
        modified = table.modified.isoformat() if table.modified else ""
        return f"{table.dataset_id.removeprefix(self.config.dataset_prefix + '_')}.{table.table_id}@{modified}" \
               f"#{(table.labels or {}).get(VERSION_LABEL, '')}"

    def _stamp(self) -> None:
        """Mark a new publication on the version table (a label: data replaced by DML does not
        change a table's modification time on every server)."""
        table = self._version_table()
        if table is not None:
            table.labels = {**(table.labels or {}), VERSION_LABEL: str(time.time_ns())}
            self.client.update_table(table, ["labels"])

    def reader(self) -> BigQueryReader:
        return BigQueryReader(self)

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        yield self.client

    def connect(self) -> AbstractContextManager[Any]:
        return self._connection()

    def _job(self, sql: str, params: Params, **config: Any) -> Any:
        from google.api_core.exceptions import GoogleAPIError
        from google.cloud import bigquery

        job_config = bigquery.QueryJobConfig(
            query_parameters=[_parameter(p) for p in params or []], **config)
        try:
            return self.client.query(sql, job_config=job_config)
        except GoogleAPIError as exc:
            raise _api_error(exc) from None

    def _rows(self, sql: str, params: Params, **result: Any) -> Any:
        from google.api_core.exceptions import GoogleAPIError

        try:
            return self._job(sql, params).result(**result)
        except GoogleAPIError as exc:
            raise _api_error(exc) from None

    def query(self, sql: str, params: Params = None) -> pa.Table:
        return self._rows(sql, params).to_arrow(create_bqstorage_client=False)

    def user_query(self, sql: str, params: Params = None, *, allow_files: bool = False,
                   timeout_s: float | None = None, max_rows: int | None = None) -> pa.Table:
        """A user's one SELECT (GoogleSQL, ``marts.x`` names), checked by a dry run first;
        ``allow_files`` means nothing here (BigQuery reads no local file)."""
        query = qualify(sql, self.config)
        kind = self._job(query, params, dry_run=True, use_query_cache=False).statement_type
        if kind != "SELECT":
            raise UserError(f"the warehouse is read-only here: a {str(kind).lower()} statement is not allowed "
                            "(one SELECT)")
        from google.api_core.exceptions import GoogleAPIError

        job = self._job(query, params, job_timeout_ms=int(timeout_s * 1000) if timeout_s else None)
        try:
            rows = job.result(timeout=timeout_s, max_results=max_rows)
            return rows.to_arrow(create_bqstorage_client=False)
        except GoogleAPIError as exc:
            raise _api_error(exc) from None
        except TimeoutError:
            job.cancel()
            raise UserError(f"the query ran longer than {timeout_s:g} s and was stopped") from None

    def query_batches(self, sql: str, params: Params = None, batch_rows: int = 10_000) -> Iterator[pa.RecordBatch]:
        yield from self._rows(sql, params, page_size=batch_rows).to_arrow_iterable()

    def relations(self) -> list[Relation]:
        from google.api_core.exceptions import GoogleAPIError

        try:
            return sorted((Relation(schema, t.table_id, "view" if t.table_type == "VIEW" else "table")
                           for schema in SCHEMAS for t in self._tables(self.config.dataset_prefix, schema)),
                          key=lambda r: (r.schema, r.name))
        except GoogleAPIError as exc:
            raise _api_error(exc) from None

    def export_table(self, relation: Relation, path: Path, fmt: str) -> int:
        """As the DuckDB target writes it: the rows come over as Parquet, which DuckDB turns into
        CSV or TSV by the same code (one convention for every engine)."""
        if fmt not in COPY_OPTIONS:
            raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(COPY_OPTIONS)}")
        rows = 0
        with tempfile.TemporaryDirectory(prefix="cohortdb-bq-") as tmp:
            part = path if fmt == "parquet" else Path(tmp) / "rows.parquet"
            writer: pq.ParquetWriter | None = None
            try:
                for batch in self.query_batches(f"select * from {self.relation_sql(relation)}"):
                    if writer is None:
                        writer = pq.ParquetWriter(part, batch.schema, compression="zstd")
                    writer.write_batch(batch)
                    rows += batch.num_rows
                if writer is None:
                    empty = self.query(f"select * from {self.relation_sql(relation)} limit 0")
                    writer = pq.ParquetWriter(part, empty.schema, compression="zstd")
            finally:
                if writer is not None:
                    writer.close()
            if fmt != "parquet":
                with duckdb.connect(":memory:") as con:
                    con.execute(f"create view result_rows as select * from read_parquet('{part}')")
                    copy_relation(con, "result_rows", path, fmt)
        return rows

    def prune(self, schema: str, keep: set[str]) -> list[str]:
        dropped = [t for t in self._tables(self.write_prefix, schema) if t.table_id not in keep]
        for table in dropped:
            self.client.delete_table(table.reference, not_found_ok=True)
        return sorted(t.table_id for t in dropped)

    def quote(self, identifier: str) -> str:
        return "`" + identifier.replace("\\", "\\\\").replace("`", "\\`") + "`"

    def relation_sql(self, relation: Relation) -> str:
        return self.quote(self._table_id(relation))
