"""A real BigQuery API for the tests: bqemulator, from the venv `make bqemu` makes, on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cohortdb.warehouse.bigquery import BigQueryConfig, client
from tests.bigquery.emulator import PROJECT, EmulatorError, running_emulator


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
