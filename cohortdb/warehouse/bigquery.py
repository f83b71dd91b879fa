"""The BigQuery warehouse: the lake loaded into ``<prefix>_raw`` datasets (work in progress:
``load`` only; ``build`` and reads are not written yet).

Each lake table is first conformed exactly as the DuckDB load does it (the same select over
the same Parquet parts, run by an in-memory DuckDB that streams it to one Parquet file), then
loaded by one load job with an explicit schema made from that file's Arrow schema. A load
replaces the tables only once every table has loaded: each goes to a staging table first.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from cohortdb.warehouse.duckdb import lake_select
from cohortdb.warehouse.lake_tables import LakeTable, lake_tables
from ingest.errors import UserError
from ingest.lake import lock_every_namespace
from ingest.settings import Settings

PROJECT_ENV = "COHORTDB_BQ_PROJECT"
PREFIX_ENV = "COHORTDB_BQ_DATASET_PREFIX"
EMULATOR_ENV = "BIGQUERY_EMULATOR_HOST"
STAGING_SUFFIX = "__staging"


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


def config_from(project: str | None, dataset_prefix: str | None, location: str | None = None,
                api_endpoint: str | None = None) -> BigQueryConfig:
    """The options, else ``$COHORTDB_BQ_PROJECT``, ``$COHORTDB_BQ_DATASET_PREFIX`` and
    ``$BIGQUERY_EMULATOR_HOST`` (a scheme is added when it has none).

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
    return BigQueryConfig(project, prefix, location, endpoint)


def client(config: BigQueryConfig) -> Any:
    """A ``google.cloud.bigquery.Client``: the standard Google credentials, or none for an emulator."""
    from google.api_core.client_options import ClientOptions
    from google.cloud import bigquery

    if config.api_endpoint is None:
        return bigquery.Client(project=config.project, location=config.location)
    from google.auth.credentials import AnonymousCredentials

    return bigquery.Client(project=config.project, location=config.location, credentials=AnonymousCredentials(),
                           client_options=ClientOptions(api_endpoint=config.api_endpoint))


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


def _conformed_parquet(table: LakeTable, out: Path) -> pa.Schema:
    """Stream one lake table, conformed as the DuckDB load conforms it, to ``out``."""
    with duckdb.connect(":memory:") as con:
        con.execute(f"copy ({lake_select(con, table)}) to '{out}' (format parquet, compression zstd)")
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
        bq.create_dataset(bigquery.Dataset(dataset), exists_ok=True)
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
                bq.query(f"create or replace table `{dataset}.{name}` as "
                         f"select * from `{dataset}.{name}{STAGING_SUFFIX}`").result()
                bq.delete_table(f"{dataset}.{name}{STAGING_SUFFIX}", not_found_ok=True)
                counts[name] = bq.get_table(f"{dataset}.{name}").num_rows
    except GoogleAPIError as exc:
        _drop_staged(bq, dataset, staged)
        raise UserError(f"BigQuery refused the load: {str(exc).strip().splitlines()[0]}") from None
    except BaseException:
        _drop_staged(bq, dataset, staged)
        raise
    return counts


def _drop_staged(bq: Any, dataset: str, staged: list[str]) -> None:
    """Delete the staging tables of a load that failed (the live tables were not touched)."""
    for name in staged:
        try:
            bq.delete_table(f"{dataset}.{name}{STAGING_SUFFIX}", not_found_ok=True)
        except Exception:  # noqa: BLE001 - the load's own error is the one to report
            continue
