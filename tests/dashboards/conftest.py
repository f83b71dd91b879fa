"""Fixtures of the dashboard tests: a private copy of the built warehouse (a test may
rebuild it), an empty and an unbuilt one, and the readers closed after each test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from ingest.settings import Settings, resolve_settings

APP = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"
MARTS = ("imaging_studies", "imaging_series", "patients", "data_files", "tag_catalog", "phi_audit",
         "reconciliation", "fhir_imaging_studies")


def copy_warehouse(source: Settings, target: Path) -> Settings:
    """A copy of a built warehouse directory (lake, database, dbt project links)."""
    shutil.copytree(source.warehouse_dir, target, symlinks=True,
                    ignore=shutil.ignore_patterns("warehouse.lock", "*.wal"))
    return resolve_settings(target)


@pytest.fixture(scope="session")
def dash_built(built: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A copy of the session's built warehouse that only the dashboard tests read."""
    return copy_warehouse(built, tmp_path_factory.mktemp("dash") / "warehouse")


@pytest.fixture(scope="session")
def empty_built(built: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A warehouse whose marts exist, with no rows."""
    settings = resolve_settings(tmp_path_factory.mktemp("empty") / "warehouse")
    settings.warehouse_dir.mkdir(parents=True)
    con = duckdb.connect(str(settings.warehouse_dir / "warehouse.duckdb"))
    try:
        con.execute(f"attach '{built.warehouse_dir / 'warehouse.duckdb'}' as source (read_only)")
        for schema in ("marts", "raw"):
            con.execute(f"create schema {schema}")
        for mart in MARTS:
            con.execute(f"create table marts.{mart} as select * from source.marts.{mart} limit 0")
        for table in ("dicom_instances", "dicom_elements", "dicom_errors", "guppy_imaging_study", "guppy_case",
                      "guppy_data_file"):
            con.execute(f"create table raw.{table} as select * from source.raw.{table} limit 0")
    finally:
        con.close()
    return settings


@pytest.fixture(scope="session")
def loaded_only(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A warehouse that was loaded (schema raw) but never built."""
    settings = resolve_settings(tmp_path_factory.mktemp("loaded") / "warehouse")
    settings.warehouse_dir.mkdir(parents=True)
    con = duckdb.connect(str(settings.warehouse_dir / "warehouse.duckdb"))
    con.execute("create schema raw; create table raw.dicom_errors (source_path varchar)")
    con.close()
    return settings


@pytest.fixture(autouse=True)
def _close_readers() -> Iterator[None]:
    yield
    from dashboards.queries import close_readers

    close_readers()
