"""A real BigQuery API for the tests: bqemulator, from the venv `make bqemu` makes, on 127.0.0.1."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from cohortdb.build import build
from cohortdb.project import SHIPPED_COHORTS_DIR
from cohortdb.warehouse.bigquery import BigQueryConfig, BigQueryWarehouse, client
from cohortdb.warehouse.duckdb import DuckDBWarehouse
from ingest.settings import Settings, resolve_settings
from tests.bigquery.emulator import PROJECT, EmulatorError, running_emulator

PREFIX = "engines"
"""The dataset prefix of :func:`engines`' BigQuery warehouse."""


@pytest.fixture(scope="session")
def bq_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The emulator's REST endpoint; it is stopped by its PID at the end of the session."""
    try:
        with running_emulator(tmp_path_factory.mktemp("bqemu") / "server.log") as (url, _):
            yield url
    except EmulatorError as error:
        pytest.fail(str(error))


@pytest.fixture
def bq_config(bq_emulator: str, request: pytest.FixtureRequest) -> BigQueryConfig:
    """A dataset prefix of the test's own on the emulator."""
    name = "".join(c if c.isalnum() else "_" for c in request.node.name)[:40]
    return BigQueryConfig(PROJECT, f"t_{name}", api_endpoint=bq_emulator)


@pytest.fixture
def bq(bq_config: BigQueryConfig, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import google.cloud.bigquery.client as module

    monkeypatch.setattr(module, "_GENERIC_CONTENT_TYPE", "application/octet-stream")  # emulator bug
    opened = client(bq_config)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def engines(built: Settings, bq_emulator: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[DuckDBWarehouse, BigQueryWarehouse]]:
    """The test warehouse on DuckDB, and its lake built on BigQuery (a copy of the directory,
    so the DuckDB build's compiled cohorts stay as they are). A test that changes it leaves it
    as it found it."""
    directory = tmp_path_factory.mktemp("bq-built") / "warehouse"
    shutil.copytree(built.warehouse_dir / "lake", directory / "lake")
    settings = resolve_settings(directory)
    bigquery = BigQueryWarehouse(settings, BigQueryConfig(PROJECT, PREFIX, api_endpoint=bq_emulator))
    outcome = build(settings, SHIPPED_COHORTS_DIR, bigquery)
    assert outcome.outcome.success, [line for node in outcome.outcome.failures() for line in node.report()]
    yield DuckDBWarehouse(built), bigquery
