"""Cohorts as code: definitions in ``cohorts/<name>.yml|json`` compiled into dbt models.

A definition holds the guppy ``index`` it selects from (imaging_study, case or
data_file), a guppy ``filter`` (guppy's own JSON, in YAML or JSON syntax), an
optional ``description`` and optional ``dicom_conditions``: SQL conditions on
``marts.dicom_instances`` columns, met together by at least one instance of the
selected study (case: of the case's studies; data_file: of its series).

:func:`compile_cohorts` writes, for each definition, ``models/cohorts/generated/
<name>.sql`` (rows of the index's mart: imaging_studies, patients or data_files)
and ``<name>__files.sql`` (the data_file records of those rows, for manifests),
plus a YAML with descriptions and key tests. The guppy filter becomes SQL through
the one translation, :func:`cohortdb.cohorts.filter_sql.filter_to_sql`.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import yaml

from ingest.errors import UserError
from ingest.sources.guppy.filter_file import filter_problem
from ingest.lake import part_files
from cohortdb.warehouse.guppy_fields import loaded_schema
from cohortdb.project import PROJECT_DIR
from ingest.settings import Settings

if TYPE_CHECKING:
    from cohortdb.cohorts.filter_sql import Dialect

COHORTS_DIR = PROJECT_DIR / "cohorts"
GENERATED_DIR = PROJECT_DIR / "models" / "cohorts" / "generated"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class IndexShape:
    """How a guppy index maps to its mart: the key column in the raw records and the mart."""

    mart: str
    mart_key: str
    record_key: str
    files_join: str
    dicom_join: str


INDICES: dict[str, IndexShape] = {
    "imaging_study": IndexShape(
        mart="imaging_studies", mart_key="study_uid",
        record_key="coalesce(study_uid, submitter_id)",
        files_join="files.study_uid = selected.study_uid",
        dicom_join="instances.study_instance_uid = selected.study_uid",
    ),
    "case": IndexShape(
        mart="patients", mart_key="case_id", record_key="submitter_id",
        files_join="files.case_id = selected.case_id",
        dicom_join="instances.patient_id = selected.case_id",
    ),
    "data_file": IndexShape(
        mart="data_files", mart_key="object_id", record_key="object_id",
        files_join="files.object_id = selected.object_id",
        dicom_join="instances.series_instance_uid = selected.series_uid",
    ),
}


@dataclass(frozen=True)
class Cohort:
    """One saved cohort definition."""

    name: str
    index: str
    filter: dict[str, Any] | None
    description: str = ""
    dicom_conditions: list[str] = field(default_factory=list)
    path: Path | None = None


def parse_cohort(name: str, document: Any, where: str) -> Cohort:
    """A :class:`Cohort` from a parsed definition.

    Raises:
        UserError: one line naming the file and the bad part.
    """
    if not NAME.match(name):
        raise UserError(f"{where}: cohort name {name!r} must be lowercase letters, digits and _ "
                        "(starting with a letter)")
    if not isinstance(document, dict):
        raise UserError(f"{where}: a cohort definition must be a mapping")
    unknown = set(document) - {"index", "filter", "description", "dicom_conditions", "name"}
    if unknown:
        raise UserError(f"{where}: unknown keys {sorted(unknown)}")
    index = document.get("index")
    if index not in INDICES:
        raise UserError(f"{where}: index must be one of {', '.join(INDICES)}, not {index!r}")
    filter_ = document.get("filter") or {}
    problem = filter_problem(filter_)
    if problem:
        raise UserError(f"{where}: not a valid guppy filter: {problem}")
    conditions = document.get("dicom_conditions") or []
    if isinstance(conditions, str):
        conditions = [conditions]
    if not all(isinstance(c, str) and c.strip() for c in conditions):
        raise UserError(f"{where}: dicom_conditions must be a list of SQL conditions")
    description = document.get("description") or ""
    return Cohort(name=name, index=index, filter=filter_ or None, description=str(description).strip(),
                  dicom_conditions=[c.strip() for c in conditions])


def load_cohorts(directory: Path = COHORTS_DIR) -> list[Cohort]:
    """Every definition in ``directory`` (``*.yml``, ``*.yaml``, ``*.json``), sorted by name.

    Raises:
        UserError: a file that cannot be parsed or is not a valid definition; two files
            defining the same name.
    """
    cohorts: dict[str, Cohort] = {}
    if not directory.is_dir():
        return []
    for path in sorted(directory.iterdir()):
        if path.suffix not in (".yml", ".yaml", ".json") or path.name.startswith("."):
            continue
        try:
            text = path.read_text(encoding="utf-8")
            document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(f"cannot read cohort {path}: {first}") from None
        name = (document or {}).get("name", path.stem) if isinstance(document, dict) else path.stem
        cohort = parse_cohort(str(name), document, str(path))
        if cohort.name in cohorts:
            raise UserError(f"cohort {cohort.name!r} is defined twice: {cohorts[cohort.name].path} and {path}")
        cohorts[cohort.name] = Cohort(**{**cohort.__dict__, "path": path})
    return [cohorts[n] for n in sorted(cohorts)]


def index_columns(settings: Settings, index: str) -> dict[str, pa.DataType]:
    """The guppy fields of ``raw.guppy_<index>`` as a load will create them: the
    lake's fields (unified across part files) and the declared MIDRC fields."""
    from cohortdb.cohorts.filter_sql import guppy_columns
    from cohortdb.warehouse.lake_tables import unified_schema

    files = part_files(settings.guppy_lake / index)
    actual = unified_schema(files) if files else pa.schema([])
    return guppy_columns(loaded_schema(index, actual))


def _sql_comment(text: str) -> str:
    return "\n".join(f"-- {line}".rstrip() for line in text.splitlines())


def cohort_sql(cohort: Cohort, columns: Mapping[str, pa.DataType], dialect: Dialect) -> str:
    """The dbt model selecting the cohort's rows of its index's mart."""
    from cohortdb.cohorts.filter_sql import filter_to_sql

    shape = INDICES[cohort.index]
    condition = filter_to_sql(cohort.filter, columns, dialect=dialect)
    dicom = ""
    if cohort.dicom_conditions:
        met = "\n              and ".join(f"({c})" for c in cohort.dicom_conditions)
        dicom = (f"\n    where exists (\n        select 1 from {{{{ ref('dicom_instances') }}}} as instances\n"
                 f"        where {shape.dicom_join}\n              and {met}\n    )")
    source = cohort.path.name if cohort.path else cohort.name
    return f"""-- Generated by `cohortdb build` from cohorts/{source}; edit that file, not this one.
{_sql_comment(cohort.description)}
with

records as (
    select * from {{{{ source('guppy', 'guppy_{cohort.index}') }}}}
),

matching as (
    select {shape.record_key} as cohort_key
    from records
    where {condition}
),

selected as (
    select * from {{{{ ref('{shape.mart}') }}}}
    where {shape.mart_key} in (select cohort_key from matching)
),

final as (
    select * from selected{dicom}
)

select * from final
"""


def files_sql(cohort: Cohort) -> str:
    """The companion model: the data_file records of the cohort's rows."""
    shape = INDICES[cohort.index]
    return f"""-- Generated by `cohortdb build`: the data files of cohort {cohort.name} (for manifests).
with

selected as (
    select * from {{{{ ref('{cohort.name}') }}}}
),

files as (
    select * from {{{{ ref('data_files') }}}}
),

final as (
    select files.*
    from files
    where exists (select 1 from selected where {shape.files_join})
)

select * from final
"""


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


def compile_cohorts(settings: Settings, *, dialect: Dialect = "duckdb",
                    directory: Path = COHORTS_DIR, out_dir: Path = GENERATED_DIR) -> list[Cohort]:
    """Write the generated models of every definition (replacing earlier ones).

    Raises:
        UserError: a bad definition, or a filter naming a field the index does not have.
    """
    cohorts = load_cohorts(directory)
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for cohort in cohorts:
            columns = index_columns(settings, cohort.index)
            try:
                sql = cohort_sql(cohort, columns, dialect)
            except UserError as error:
                raise UserError(f"cohort {cohort.name} ({cohort.path}): {error}") from None
            (staging / f"{cohort.name}.sql").write_text(sql, encoding="utf-8")
            (staging / f"{cohort.name}__files.sql").write_text(files_sql(cohort), encoding="utf-8")
        if cohorts:
            (staging / "_cohorts__models.yml").write_text(models_yaml(cohorts), encoding="utf-8")
        shutil.rmtree(out_dir, ignore_errors=True)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cohorts
