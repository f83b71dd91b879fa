"""`load` into BigQuery (the emulator): the same raw tables as the DuckDB load, staged."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cohortdb.warehouse.bigquery import BigQueryConfig, bq_fields, load_bigquery
from ingest.errors import UserError
from ingest.settings import Settings
from tests.cli import run_cli
from tests.warehouse import rows


def test_arrow_types_map_to_bigquery_modes_and_types() -> None:
    schema = pa.schema([("n", pa.int64()), ("tags", pa.list_(pa.string())),
                        ("code", pa.struct([("value", pa.string()), ("scheme", pa.string())])),
                        ("codes", pa.list_(pa.struct([("value", pa.string())]))), ("day", pa.date32()),
                        ("at", pa.timestamp("us", tz="UTC")), ("local", pa.timestamp("us"))])
    fields = {f.name: f for f in bq_fields(schema)}
    assert (fields["n"].field_type, fields["n"].mode) == ("INT64", "NULLABLE")
    assert (fields["tags"].field_type, fields["tags"].mode) == ("STRING", "REPEATED")
    assert fields["code"].field_type == "RECORD" and [f.name for f in fields["code"].fields] == ["value", "scheme"]
    assert (fields["codes"].field_type, fields["codes"].mode) == ("RECORD", "REPEATED")
    assert [fields[n].field_type for n in ("day", "at", "local")] == ["DATE", "TIMESTAMP", "DATETIME"]
    for bad in (pa.list_(pa.list_(pa.int32())), pa.uint64()):
        with pytest.raises(UserError):
            bq_fields(pa.schema([("x", bad)]))


def test_the_lake_loads_with_the_duckdb_loads_row_counts(built: Settings, bq_config: BigQueryConfig,
                                                         bq: Any) -> None:
    counts = load_bigquery(built, bq_config, bq)
    expected = {r["table_name"]: r["n"] for r in rows(built, """
        select table_name, estimated_size as n from duckdb_tables() where schema_name = 'raw'""")}
    assert counts.keys() == expected.keys() and counts["dicom_instances"] > 0
    for name in counts:
        assert counts[name] == rows(built, f"select count(*) as n from raw.{name}")[0]["n"], name
    dataset = f"{bq_config.project}.{bq_config.dataset('raw')}"
    assert not [t.table_id for t in bq.list_tables(dataset) if t.table_id.endswith("__staging")]
    loaded = bq.query(f"select count(distinct sop_instance_uid) as n from `{dataset}.dicom_instances`").result()
    assert next(iter(loaded))["n"] == rows(built, "select count(distinct sop_instance_uid) as n "
                                                  "from raw.dicom_instances")[0]["n"]


def test_a_failed_load_leaves_the_previous_tables(built: Settings, bq_config: BigQueryConfig, bq: Any,
                                                   tmp_path: Path) -> None:
    before = load_bigquery(built, bq_config, bq)
    lake = tmp_path / "w"
    shutil.copytree(built.warehouse_dir / "lake", lake / "lake")
    changed = Settings(warehouse_dir=lake)
    part = next((changed.dicom_lake / "instances").rglob("*.parquet"))
    pq.write_table(pq.read_table(part).slice(0, 1), part)  # fewer instances: the load would change it
    bad = changed.guppy_lake / "weird"
    bad.mkdir(parents=True)
    pq.write_table(pa.table({"submitter_id": ["x"], "grid": [[[1, 2]]]}), bad / "part-0.parquet")  # list of lists
    with pytest.raises(UserError, match="list of lists"):
        load_bigquery(changed, bq_config, bq)
    dataset = f"{bq_config.project}.{bq_config.dataset('raw')}"
    assert {t.table_id for t in bq.list_tables(dataset)} == set(before)  # no staging table left
    for name, n in before.items():
        assert bq.get_table(f"{dataset}.{name}").num_rows == n, name


def test_the_cli_loads_into_bigquery(built: Settings, bq_emulator: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COHORTDB_BQ_PROJECT", raising=False)
    monkeypatch.delenv("BIGQUERY_EMULATOR_HOST", raising=False)
    w = str(built.warehouse_dir)
    missing = run_cli("-w", w, "load", "--target", "bigquery")
    assert missing.exit_code == 2 and "--project and --dataset-prefix" in missing.stderr
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bq_emulator.removeprefix("http://"))  # as emulators set it
    loaded = run_cli("-w", w, "load", "--target", "bigquery", "--project", "test-project", "--dataset-prefix", "cli")
    assert loaded.exit_code == 0, loaded.output
    instances = rows(built, "select count(*) as n from raw.dicom_instances")[0]["n"]
    assert f"raw.dicom_instances: {instances} rows" in loaded.stdout
    assert "loaded into test-project.cli_*" in loaded.stdout


def test_a_load_the_server_refuses_half_way_leaves_the_previous_tables(built: Settings, bq_config: BigQueryConfig,
                                                                       bq: Any) -> None:
    before = load_bigquery(built, bq_config, bq)
    dataset = f"{bq_config.project}.{bq_config.dataset('raw')}"
    # a view where the fourth table's staging table goes: BigQuery refuses to load into a view
    bq.query(f"create view `{dataset}.guppy_case__staging` as select 1 as x").result()
    with pytest.raises(UserError, match="BigQuery refused the load"):
        load_bigquery(built, bq_config, bq)
    # the three tables staged before it are dropped; the view, not the load's, stays
    assert {t.table_id for t in bq.list_tables(dataset)} == {*before, "guppy_case__staging"}
    for name, n in before.items():
        assert bq.get_table(f"{dataset}.{name}").num_rows == n, name
