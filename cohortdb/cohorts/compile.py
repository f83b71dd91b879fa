"""Compiling cohort definitions into SQL: dbt models for ``cohortdb build``, plain
queries for the CLI, the API and the dashboard. One template serves both; only
the way it names the tables it reads differs (:class:`Refs`).

:func:`compile_cohorts` writes, for each definition, ``<name>.sql`` (rows of the
index's mart: imaging_studies, patients or data_files) and ``<name>__files.sql``
(the data_file records of those rows, for manifests), plus a YAML with
descriptions and key tests, into the warehouse's own generated models
directory (:func:`generated_models_dir`): two warehouses built from one
checkout never share them. The guppy filter becomes SQL through the one
translation, :func:`cohortdb.cohorts.filter_sql.filter_to_sql`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import yaml

from cohortdb.cohorts.definitions import INDICES, Cohort, load_cohorts
from cohortdb.cohorts.filter_sql import filter_to_sql, guppy_columns
from cohortdb.warehouse.base import Dialect
from cohortdb.warehouse.guppy_fields import loaded_schema
from cohortdb.warehouse.lake_tables import unified_schema
from ingest.errors import UserError
from ingest.lake import part_files
from ingest.settings import Settings

COHORT_SCHEMA = "cohorts"
"""The dbt folder (and warehouse schema) of cohort models."""


@dataclass(frozen=True)
class Refs:
    """How compiled SQL names what it reads: ``guppy(index)`` the raw records of a
    guppy index, ``model(name)`` a dbt model (a mart, or a cohort for ``__files``)."""

    guppy: Callable[[str], str]
    model: Callable[[str], str]


DBT_REFS = Refs(
    guppy=lambda index: f"{{{{ source('guppy', 'guppy_{index}') }}}}",
    model=lambda name: f"{{{{ ref('{name}') }}}}",
)
"""Jinja ``source()``/``ref()``: the SQL of a dbt model, so lineage sees every cohort."""


def warehouse_project_dir(settings: Settings) -> Path:
    """The dbt project directory of one warehouse (see :mod:`cohortdb.dbt`)."""
    return settings.warehouse_dir / "dbt" / "project"


def generated_models_dir(settings: Settings) -> Path:
    """The warehouse's generated dbt models: the project's second model path, ``generated``."""
    return warehouse_project_dir(settings) / "generated"


def index_columns(settings: Settings, index: str) -> dict[str, pa.DataType]:
    """The guppy fields of ``raw.guppy_<index>`` as a load will create them: the
    lake's fields (unified across part files) and the declared MIDRC fields."""
    files = part_files(settings.guppy_lake / index)
    actual = unified_schema(files) if files else pa.schema([])
    return guppy_columns(loaded_schema(index, actual))


def _sql_comment(text: str) -> str:
    return "\n".join(f"-- {line}".rstrip() for line in text.splitlines())


def translate_condition(condition: str, dialect: Dialect) -> str:
    """A DICOM condition (DuckDB SQL, as cohort files write them) in ``dialect``: itself for
    DuckDB, sqlglot's translation for BigQuery.

    Raises:
        UserError: sqlglot cannot parse it, or has no BigQuery form for some part of it.
    """
    if dialect == "duckdb":
        return condition
    import sqlglot
    from sqlglot.errors import ErrorLevel

    try:
        tree = sqlglot.parse_one(condition, read="duckdb")
        return tree.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE)
    except sqlglot.errors.SqlglotError as exc:
        problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"the DICOM condition {condition!r} has no {dialect} translation: {problem}") from None


def cohort_select(cohort: Cohort, columns: Mapping[str, pa.DataType], dialect: Dialect, refs: Refs) -> str:
    """The query selecting the cohort's rows of its index's mart.

    Args:
        columns: the guppy fields of the index (:func:`index_columns`, or a loaded table's).

    Raises:
        UserError: the filter names a field the index does not have, or is invalid.
    """
    shape = INDICES[cohort.index]
    condition = filter_to_sql(cohort.filter, columns, dialect=dialect)
    dicom_cte, dicom_where = "", ""
    if cohort.dicom_conditions:
        # A CTE of its own, so that the conditions see dicom_instances' columns only (a
        # correlated subquery would bind a mistyped column to the mart's, or suggest those).
        met = "\n      and ".join(f"({translate_condition(c, dialect)})" for c in cohort.dicom_conditions)
        dicom_cte = f"""dicom_matching as (
    select instances.{shape.dicom_key} as dicom_key
    from {refs.model('dicom_instances')} as instances
    where {met}
),

"""
        dicom_where = f"\n    where {shape.mart_dicom_key} in (select dicom_key from dicom_matching)"
    return f"""with

records as (
    select * from {refs.guppy(cohort.index)}
),

matching as (
    select {shape.record_key} as cohort_key
    from records
    where {condition}
),

{dicom_cte}selected as (
    select * from {refs.model(shape.mart)}
    where {shape.mart_key} in (select cohort_key from matching)
),

final as (
    select * from selected{dicom_where}
)

select * from final
"""


def files_select(cohort: Cohort, refs: Refs) -> str:
    """The companion query: the data_file records of the cohort's rows (``refs.model(name)`` is the cohort)."""
    shape = INDICES[cohort.index]
    return f"""with

selected as (
    select * from {refs.model(cohort.name)}
),

files as (
    select * from {refs.model('data_files')}
),

final as (
    select files.*
    from files
    where exists (select 1 from selected where {shape.files_join})
)

select * from final
"""


def cohort_model(cohort: Cohort, columns: Mapping[str, pa.DataType], dialect: Dialect) -> str:
    """The dbt model of a cohort: :func:`cohort_select` with ``ref()``s, under a header."""
    source = cohort.path.name if cohort.path else cohort.name
    header = f"-- Generated by `cohortdb build` from cohorts/{source}; edit that file, not this one.\n"
    return header + _sql_comment(cohort.description) + "\n" + cohort_select(cohort, columns, dialect, DBT_REFS)


def files_model(cohort: Cohort) -> str:
    """The dbt model of a cohort's data files (for manifests)."""
    header = f"-- Generated by `cohortdb build`: the data files of cohort {cohort.name} (for manifests).\n"
    return header + files_select(cohort, DBT_REFS)


def models_yaml(cohorts: Sequence[Cohort]) -> str:
    """Descriptions and key tests of the generated models."""
    models = []
    for cohort in cohorts:
        shape = INDICES[cohort.index]
        key_tests = ["unique", "not_null", {"relationships": {"arguments": {
            "to": f"ref('{shape.mart}')", "field": shape.mart_key}}}]
        models.append({
            "name": cohort.name,
            "description": cohort.description or f"Cohort {cohort.name} ({cohort.index}).",
            "config": {"tags": ["cohort"], "meta": {"index": cohort.index, "definition": str(cohort.path or "")}},
            "columns": [{"name": shape.mart_key, "data_tests": key_tests}],
        })
        models.append({
            "name": f"{cohort.name}__files",
            "description": f"The data_file records (DRS object ids) of cohort {cohort.name}.",
            "config": {"tags": ["cohort"]},
            "columns": [{"name": "object_id", "data_tests": ["unique", "not_null"]}],
        })
    return "# Generated by `cohortdb build` from cohorts/; do not edit.\n" + yaml.safe_dump(
        {"version": 2, "models": models}, sort_keys=False)


def compile_cohorts(settings: Settings, directory: Path, *, dialect: Dialect = "duckdb",
                    out_dir: Path | None = None) -> list[Cohort]:
    """Write the models of every definition in ``directory``, replacing the earlier ones.

    ``out_dir`` defaults to ``<generated models>/cohorts``; it holds exactly the
    current definitions afterwards (none when the directory has none).

    Raises:
        UserError: a bad definition, or a filter naming a field the index does not have.
    """
    out_dir = out_dir or generated_models_dir(settings) / COHORT_SCHEMA
    cohorts = load_cohorts(directory)
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for cohort in cohorts:
            columns = index_columns(settings, cohort.index)
            try:
                sql = cohort_model(cohort, columns, dialect)
            except UserError as error:
                raise UserError(f"cohort {cohort.name} ({cohort.path}): {error}") from None
            (staging / f"{cohort.name}.sql").write_text(sql, encoding="utf-8")
            (staging / f"{cohort.name}__files.sql").write_text(files_model(cohort), encoding="utf-8")
        if cohorts:
            (staging / "_cohorts__models.yml").write_text(models_yaml(cohorts), encoding="utf-8")
        shutil.rmtree(out_dir, ignore_errors=True)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cohorts
