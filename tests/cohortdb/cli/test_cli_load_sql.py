"""`cohortdb load` and `cohortdb sql` on a real DuckDB file."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cohortdb.cli.main import app
from cohortdb.warehouse.duckdb import database_path, load_duckdb
from ingest.dicom.schema import TABLES as DICOM_TABLES
from ingest.lake import part_files
from ingest.settings import Settings
from ingest.sources.files.ingest import ingest_dicom

runner = CliRunner()


@pytest.fixture
def loaded(settings: Settings, corpus_files: list[Path], tmp_path: Path) -> Settings:
    source = tmp_path / "src"
    source.mkdir()
    for path in corpus_files[:30]:
        (source / path.name).write_bytes(path.read_bytes())
    ingest_dicom(settings, [source], workers=1)
    load_duckdb(settings)
    return settings


def _cli(settings: Settings, *args: str):  # noqa: ANN202
    return runner.invoke(app, ["--warehouse", str(settings.warehouse_dir), *args])


def test_load_is_idempotent_and_matches_the_lake(loaded: Settings) -> None:
    first = load_duckdb(loaded)
    second = load_duckdb(loaded)
    assert first == second
    assert first["dicom_instances"] > 0 and first["dicom_elements"] > first["dicom_instances"]
    with duckdb.connect(str(database_path(loaded)), read_only=True) as con:
        types = dict(con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' and table_name = 'dicom_instances'").fetchall())
        assert types["study_date"] == "DATE" and types["study_time"] == "TIME"
        assert types["pixel_spacing"] == "DOUBLE[]" and types["rows"] == "BIGINT"
        elements = dict(con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' and table_name = 'dicom_elements'").fetchall())
        assert elements["values"] == "VARCHAR[]" and elements["value_number"] == "DOUBLE"


def test_empty_lake_loads_empty_tables_with_the_contract_columns(settings: Settings) -> None:
    counts = load_duckdb(settings)
    assert counts == {"dicom_instances": 0, "dicom_elements": 0, "dicom_errors": 0,
                      "guppy_case": 0, "guppy_data_file": 0, "guppy_imaging_study": 0}
    with duckdb.connect(str(database_path(settings)), read_only=True) as con:
        columns = {r[0] for r in con.execute(
            "select column_name from information_schema.columns where table_name = 'guppy_imaging_study'"
        ).fetchall()}
    assert {"study_uid", "study_modality", "imaging_study_annotations", "_record"} <= columns


def test_a_lake_written_before_a_column_existed_loads_it_as_null(loaded: Settings) -> None:
    newer = {"elements": ["value_offset"], "instances": ["truncated", "truncated_at"], "errors": ["severity"]}
    for table, columns in newer.items():
        for part in part_files(loaded.dicom_lake / table):
            old = pq.read_table(part)
            pq.write_table(old.drop_columns(columns), part)
    load_duckdb(loaded)
    with duckdb.connect(str(database_path(loaded)), read_only=True) as con:
        for table, columns in newer.items():
            described = {row[0]: row[1] for row in con.execute(f"describe raw.dicom_{table}").fetchall()}
            assert list(described) == DICOM_TABLES[table].names
            for column in columns:
                assert con.execute(f"select count({column}) from raw.dicom_{table}").fetchone() == (0,)
        assert con.execute("select count(*) from raw.dicom_elements").fetchone()[0] > 1000


def test_sql_prints_table_csv_and_json(loaded: Settings) -> None:
    query = "select modality, count(*) as n from raw.dicom_instances group by 1 order by 2 desc, 1"
    table = _cli(loaded, "sql", query)
    assert table.exit_code == 0 and "modality" in table.stdout
    rows = list(csv.DictReader(io.StringIO(_cli(loaded, "sql", query, "--format", "csv").stdout)))
    records = json.loads(_cli(loaded, "sql", query, "--format", "json").stdout)
    assert [r["n"] for r in rows] == [str(r["n"]) for r in records]
    with duckdb.connect(str(database_path(loaded)), read_only=True) as con:
        assert [tuple(r.values()) for r in records] == con.execute(query).fetchall()


def test_sql_errors_keep_duckdbs_hints_and_say_what_to_run(loaded: Settings, tmp_path: Path) -> None:
    bad = _cli(loaded, "sql", "select * from raw.dicom_instance")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: Catalog Error:")
    lines = bad.stderr.strip().splitlines()
    assert 'Did you mean "raw.dicom_instances"' in bad.stderr or 'Did you mean "dicom_instances"' in bad.stderr
    query_line, caret = lines[-2], lines[-1]
    assert query_line == "LINE 1: select * from raw.dicom_instance"
    assert caret.strip() == "^" and query_line[len(caret) - 1:].startswith("raw.dicom_instance")
    unbuilt = _cli(loaded, "sql", "select * from marts.imaging_studies")  # loaded, never built
    assert unbuilt.exit_code == 2 and "made by `cohortdb build`" in unbuilt.stderr
    fmt = _cli(loaded, "sql", "select 1", "--format", "xml")
    assert fmt.exit_code == 2 and "xml" in fmt.stderr
    missing = runner.invoke(app, ["--warehouse", str(tmp_path / "none"), "sql", "select 1"])
    assert missing.exit_code == 2 and "nothing was ingested" in missing.stderr and "cohortdb build" in missing.stderr


@pytest.mark.parametrize(("query", "message"), [
    ("select * from read_csv('/etc/passwd')", "disabled by configuration"),
    ("select * from glob('/root/**')", "disabled by configuration"),
    ("select * from read_parquet('{lake}/dicom/instances/*.parquet')", "disabled by configuration"),
    ("copy (select 1 as forged) to '{lake}/dicom/instances/forged.parquet'", "copy statement is not allowed"),
    ("select 1; drop schema raw cascade", "give one SQL statement, not 2"),
    ("attach '{warehouse}/warehouse.duckdb' as rw", "attach statement is not allowed"),
    ("detach warehouse", "detach statement is not allowed"),
    ("set memory_limit = '20GB'", "set statement is not allowed"),
    ("create table raw.x as select 1", "create statement is not allowed"),
])
def test_sql_is_read_only_in_fact(loaded: Settings, query: str, message: str) -> None:
    query = query.format(lake=loaded.lake_dir, warehouse=loaded.warehouse_dir)
    result = _cli(loaded, "sql", query)
    assert result.exit_code == 2 and result.stderr.startswith("error:"), result.output
    assert message in result.stderr and result.stderr.count("error:") == 1
    assert not list(loaded.lake_dir.rglob("forged*"))
    assert _cli(loaded, "sql", "select count(*) as n from raw.dicom_instances").exit_code == 0


def test_allow_files_opens_duckdb_file_functions(loaded: Settings, tmp_path: Path) -> None:
    mine = tmp_path / "mine.csv"
    mine.write_text("a,b\n1,2\n")
    query = f"select * from read_csv('{mine}')"
    assert _cli(loaded, "sql", query).exit_code == 2
    allowed = _cli(loaded, "sql", query, "--allow-files", "-f", "json")
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout) == [{"a": 1, "b": 2}]
    assert _cli(loaded, "sql", "set threads = 1", "--allow-files").exit_code == 2  # still one query only
