"""The guppy filter translation on BigQuery itself: random filters, run on the emulator, select
exactly what the fake commons' evaluator selects (the DuckDB property test's records and
strategies, loaded by `load --target bigquery`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohortdb.cohorts.filter_sql import filter_to_sql
from cohortdb.warehouse.base import Relation
from cohortdb.warehouse.bigquery import BigQueryConfig, BigQueryWarehouse
from ingest.settings import resolve_settings
from tests.bigquery.emulator import PROJECT
from tests.cohortdb.cohorts.test_guppy_filter_sql import (  # noqa: F401 - fixtures
    INDICES,
    Catalog,
    columns,
    con,
    filters,
    records,
    warehouse,
)
from tests.fake_gen3.filters import matches


@pytest.fixture(scope="module")
def on_bigquery(warehouse: Path, bq_emulator: str) -> BigQueryWarehouse:  # noqa: F811
    config = BigQueryConfig(PROJECT, "filters", api_endpoint=bq_emulator)
    target = BigQueryWarehouse(resolve_settings(warehouse), config)
    target.load()
    return target


def _select(target: BigQueryWarehouse, index: str, where: str) -> set[str]:
    table = target.relation_sql(Relation("raw", f"guppy_{index}", "table"))
    return set(target.query(f"select submitter_id from {table} as g where {where}").column(0).to_pylist())


def test_random_filters_select_on_bigquery_what_the_fake_commons_selects(
    on_bigquery: BigQueryWarehouse,
    records: dict[str, list[dict[str, Any]]],  # noqa: F811
    columns: dict[str, dict[str, pa.DataType]],  # noqa: F811
) -> None:
    catalogs = {index: Catalog(records[index]) for index in INDICES}
    strategies = {index: filters(catalogs[index]) for index in INDICES}
    hits: Counter[str] = Counter()

    @settings(max_examples=80, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        index = data.draw(st.sampled_from(INDICES), label="index")
        filter_ = data.draw(strategies[index], label="filter")
        expected = {r["submitter_id"] for r in records[index] if matches(r, filter_, catalogs[index].kinds)}
        where = filter_to_sql(filter_, columns[index], "bigquery", relation_alias="g")
        assert _select(on_bigquery, index, where) == expected, where
        total = len(records[index])
        hits["some" if 0 < len(expected) < total else "none" if not expected else "all"] += 1

    check()
    assert hits["some"] >= sum(hits.values()) // 4, hits

