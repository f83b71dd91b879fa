"""The same lake, the same dbt project, the same answers: the test warehouse built on DuckDB
and on BigQuery (the emulator) holds equal marts and cohorts, and the reads (`sql`, `cohort`,
`export`, the Python API) give equal results on both."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cohortdb.api import Warehouse
from cohortdb.build import build, load
from cohortdb.project import SHIPPED_COHORTS_DIR
from cohortdb.warehouse.base import Relation
from cohortdb.warehouse.bigquery import NEXT_SUFFIX, BigQueryConfig, BigQueryWarehouse
from cohortdb.warehouse.duckdb import LOCK_FILE, DuckDBWarehouse, WriterLock
from ingest.errors import UserError
from ingest.settings import Settings
from tests.bigquery.compare import normal, rows
from tests.bigquery.conftest import PREFIX
from tests.bigquery.emulator import PROJECT
from tests.cli import run_cli


def _csv_rows(text: str) -> list[tuple[Any, ...]]:
    """CSV text's header, then its rows sorted, each cell :func:`normal` (an empty cell NULL)."""
    header, *body = csv.reader(io.StringIO(text))
    return [tuple(header), *sorted((tuple(normal(c) if c else None for c in row) for row in body), key=repr)]


def _relations(warehouse: DuckDBWarehouse | BigQueryWarehouse, schema: str) -> list[str]:
    return sorted(r.name for r in warehouse.relations() if r.schema == schema)


@pytest.mark.parametrize("schema", ["staging", "intermediate", "marts", "cohorts"])
def test_every_model_and_cohort_is_equal_row_for_row(
        engines: tuple[DuckDBWarehouse, BigQueryWarehouse], schema: str) -> None:
    duck, bq = engines
    names = _relations(duck, schema)
    assert names and _relations(bq, schema) == names
    for name in names:
        relation = Relation(schema, name, "table")
        left = duck.query(f"select * from {duck.relation_sql(relation)}")
        right = bq.query(f"select * from {bq.relation_sql(relation)}")
        assert right.column_names == left.column_names, name
        assert right.num_rows == left.num_rows, name
        expected, got = rows(left), rows(right)
        for row_expected, row_got in zip(expected, got, strict=True):
            assert row_got == row_expected, (name, {c: (e, g) for c, e, g in zip(
                left.column_names, row_expected, row_got, strict=True) if e != g})


def test_fhir_resources_keep_their_camel_case_keys(engines: tuple[DuckDBWarehouse, BigQueryWarehouse]) -> None:
    _, bq = engines
    resources = bq.query(f"select resource_json from "
                         f"{bq.relation_sql(Relation('marts', 'fhir_imaging_studies', 'table'))}")
    first = json.loads(resources.column(0)[0].as_py())
    assert first["resourceType"] == "ImagingStudy" and "numberOfSeries" in first


def _cli(warehouse: Settings, bq_emulator: str, *args: str) -> Any:
    return run_cli("-w", str(warehouse.warehouse_dir), "--target", "bigquery", "--project", PROJECT,
                   "--dataset-prefix", PREFIX, "--api-endpoint", bq_emulator, *args)


def test_sql_names_the_schemas_as_on_duckdb_and_stays_read_only(
        engines: tuple[DuckDBWarehouse, BigQueryWarehouse], bq_emulator: str) -> None:
    duck, bq = engines
    query = "select modality, count(*) as n from marts.dicom_instances group by modality order by modality"
    result = _cli(bq.settings, bq_emulator, "sql", "-f", "csv", query)
    assert result.exit_code == 0, result.output
    expected = run_cli("-w", str(duck.settings.warehouse_dir), "sql", "-f", "csv", query)
    assert result.stdout == expected.stdout and result.stdout.count("\n") > 2
    for bad, says in [("delete from marts.dicom_instances where true", "read-only"),
                      ("select 1; select 2", "one SQL statement"),
                      ("drop table marts.imaging_studies", "read-only"),
                      ("select * from marts.no_such_table", "no_such_table")]:
        refused = _cli(bq.settings, bq_emulator, "sql", bad)
        assert refused.exit_code == 2 and says in refused.stderr, (bad, refused.output)
        assert "Traceback" not in refused.output
    assert bq.query("select count(*) as n from " + bq.relation_sql(Relation("marts", "imaging_studies", "table"))
                    ).column("n")[0].as_py() == duck.query("select count(*) as n from marts.imaging_studies"
                                                           ).column("n")[0].as_py()


def test_cohort_commands_select_alike(engines: tuple[DuckDBWarehouse, BigQueryWarehouse], bq_emulator: str,
                                     tmp_path: Path) -> None:
    duck, bq = engines
    filter_ = tmp_path / "filter.json"
    filter_.write_text(json.dumps({"AND": [{"IN": {"study_modality": ["CR", "DX"]}}, {">=": {"age_at_index": 20}}]}))
    for args in (["cohort", "--index", "imaging_study", "--filter", str(filter_), "-f", "ids"],
                 ["cohort", "--index", "imaging_study", "--filter", str(filter_), "-f", "csv"],
                 ["cohort", "list", "-f", "csv"]):
        on_bq = _cli(bq.settings, bq_emulator, *args)
        on_duck = run_cli("-w", str(duck.settings.warehouse_dir), *args)
        assert on_bq.exit_code == 0 == on_duck.exit_code, (args, on_bq.output, on_duck.output)
        assert _csv_rows(on_bq.stdout) == _csv_rows(on_duck.stdout) and on_bq.stdout.count("\n") > 1, args


def test_exports_are_equal(engines: tuple[DuckDBWarehouse, BigQueryWarehouse], bq_emulator: str,
                           tmp_path: Path) -> None:
    duck, bq = engines
    for kind, args in [("manifest", ["--cohort", "seed000_covid_chest_xr"]), ("csv", ["--model", "imaging_studies"]),
                       ("parquet", ["--model", "imaging_series"]), ("fhir", [])]:
        outs = {}
        for engine, settings in (("duckdb", duck.settings), ("bigquery", bq.settings)):
            out = tmp_path / f"{kind}-{engine}"
            runner = _cli if engine == "bigquery" else (lambda s, _u, *a: run_cli("-w", str(s.warehouse_dir), *a))
            result = runner(settings, bq_emulator, "export", kind, *args, "--out", str(out))
            assert result.exit_code == 0, (kind, engine, result.output)
            outs[engine] = out
        if kind == "parquet":
            import pyarrow.parquet as pq

            assert rows(pq.read_table(outs["bigquery"])) == rows(pq.read_table(outs["duckdb"]))
        elif kind == "csv":
            assert _csv_rows(outs["bigquery"].read_text()) == _csv_rows(outs["duckdb"].read_text())
        elif kind == "fhir":
            def lines(path: Path) -> list[Any]:
                return sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda r: r["id"])
            assert lines(outs["bigquery"]) == lines(outs["duckdb"])
        else:
            assert json.loads(outs["bigquery"].read_text()) == json.loads(outs["duckdb"].read_text())


def test_the_python_api_reads_bigquery(engines: tuple[DuckDBWarehouse, BigQueryWarehouse], bq_emulator: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    duck, bq = engines
    monkeypatch.setenv("COHORTDB_BQ_PROJECT", PROJECT)
    monkeypatch.setenv("COHORTDB_BQ_DATASET_PREFIX", PREFIX)
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bq_emulator)
    on_bq = Warehouse(bq.settings.warehouse_dir, target="bigquery")
    on_duck = Warehouse(duck.settings.warehouse_dir)
    query = "select study_uid from marts.imaging_studies where n_instances > ? order by study_uid"
    assert on_bq.sql(query, [1]).equals(on_duck.sql(query, [1])) and len(on_duck.sql(query, [1])) > 0
    assert on_bq.cohort("seed000_covid_chest_xr").height == on_duck.cohort("seed000_covid_chest_xr").height
    with pytest.raises(UserError, match="read-only"):
        on_bq.sql("insert into marts.imaging_studies (study_uid) values ('x')")


def test_a_reader_caps_rows_and_names_its_version(engines: tuple[DuckDBWarehouse, BigQueryWarehouse]) -> None:
    _, bq = engines
    reader = bq.reader()
    assert reader.version == bq.version() and reader.version.startswith("marts.imaging_studies@")
    table, more = reader.user_query("select study_uid from marts.imaging_studies order by study_uid", max_rows=5)
    assert table.num_rows == 5 and more
    table, more = reader.user_query("select count(*) as n from marts.imaging_studies", max_rows=5)
    assert table.num_rows == 1 and not more
    assert reader.relations() == bq.relations()
    with pytest.raises(UserError, match="read-only"):
        reader.user_query("delete from marts.imaging_studies where true")


def test_a_failed_build_leaves_the_live_datasets_and_a_good_one_replaces_them(
        engines: tuple[DuckDBWarehouse, BigQueryWarehouse], tmp_path: Path) -> None:
    _, bq = engines
    datasets = {d.dataset_id for d in bq.client.list_datasets()}
    assert f"{PREFIX}_marts" in datasets and not any(NEXT_SUFFIX in d for d in datasets)  # the fixture's build
    before = {r: bq.query(f"select count(*) as n from {bq.relation_sql(r)}").column(0)[0].as_py()
              for r in bq.relations() if r.schema in ("marts", "cohorts")}
    version = bq.version()
    broken = tmp_path / "cohorts"
    broken.mkdir()
    (broken / "only_ct.yml").write_text("index: imaging_study\nfilter: {IN: {study_modality: [CT]}}\n")
    (broken / "bad_column.yml").write_text(
        "index: imaging_study\nfilter: {}\ndicom_conditions: [no_such_column > 1]\n")
    failed = build(bq.settings, broken, bq)
    assert not failed.outcome.success and failed.failed_at == f"{PROJECT}.{PREFIX}{NEXT_SUFFIX}_*"
    assert any(n.name == "bad_column" for n in failed.outcome.failures())
    assert bq.version() == version  # nothing live was replaced
    assert {r: bq.query(f"select count(*) as n from {bq.relation_sql(r)}").column(0)[0].as_py()
            for r in bq.relations() if r.schema in ("marts", "cohorts")} == before
    (broken / "bad_column.yml").unlink()
    rebuilt = build(bq.settings, broken, bq)
    assert rebuilt.outcome.success and rebuilt.failed_at is None
    assert bq.version() != version
    assert sorted(r.name for r in bq.relations() if r.schema == "cohorts") == ["only_ct", "only_ct__files"]
    assert not any(NEXT_SUFFIX in d.dataset_id for d in bq.client.list_datasets())
    build(bq.settings, SHIPPED_COHORTS_DIR, bq)  # as the other tests found it


def test_publishing_recreates_views_on_the_live_datasets(engines: tuple[DuckDBWarehouse, BigQueryWarehouse]) -> None:
    _, bq = engines
    target = BigQueryWarehouse(bq.settings, BigQueryConfig(PROJECT, "views", api_endpoint=bq.config.api_endpoint))
    with target.publishing(from_live=False):
        dataset = f"{PROJECT}.views{NEXT_SUFFIX}_marts"
        target.client.create_dataset(dataset, exists_ok=True)
        target.client.query(f"create table `{dataset}.t` as select 1 as k union all select 2").result()
        target.client.query(f"create view `{PROJECT}`.`views{NEXT_SUFFIX}_marts`.`v` as "
                            f"select k from `{PROJECT}`.`views{NEXT_SUFFIX}_marts`.`t` where k > 1").result()
    assert [(r.name, r.kind) for r in target.relations()] == [("t", "table"), ("v", "view")]
    assert target.query(f"select k from `{PROJECT}.views_marts.v`").column(0).to_pylist() == [2]
    assert not any(NEXT_SUFFIX in d.dataset_id for d in target.client.list_datasets())


def test_publishing_swaps_the_tables_in_one_transaction(engines: tuple[DuckDBWarehouse, BigQueryWarehouse]) -> None:
    """A reader polling while a new version is published sees every table old or every table new,
    never a mix; a table whose columns changed is replaced, a new one added, a gone one dropped."""
    _, bq = engines
    target = BigQueryWarehouse(bq.settings, BigQueryConfig(PROJECT, "atomic", api_endpoint=bq.config.api_endpoint))
    names = [f"t{i}" for i in range(8)]

    def publish(version: int, extra: str) -> None:
        with target.publishing(from_live=False):
            dataset = f"{PROJECT}.atomic{NEXT_SUFFIX}_marts"
            target.client.create_dataset(dataset, exists_ok=True)
            for name in names:
                target.client.query(f"create table `{dataset}.{name}` as select {version} as version, "
                                    "[struct('a' as k, [1, 2] as v)] as nested").result()
            target.client.query(f"create table `{dataset}.{extra}` as select {version} as version"
                                + (", 'new column' as note" if version == 2 else "")).result()

    publish(1, "changes")
    publish(1, "goes")  # the same tables and a second extra, so that the next version drops one
    live = ", ".join(f"(select max(version) from `{PROJECT}.atomic_marts.{n}`) as {n}" for n in names)
    seen: list[tuple[int, ...]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            seen.append(tuple(target.query(f"select {live}").to_pylist()[0].values()))

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        publish(2, "changes")
        time.sleep(0.5)
    finally:
        stop.set()
        reader.join()
    assert {row for row in seen if len(set(row)) > 1} == set(), "a reader saw old and new tables together"
    assert seen[0] == (1,) * len(names) and seen[-1] == (2,) * len(names)
    tables = {t.table_id: t for t in target.client.list_tables(f"{PROJECT}.atomic_marts")}
    assert set(tables) == {*names, "changes"}  # "goes" is gone
    assert [f.name for f in target.client.get_table(tables["changes"].reference).schema] == ["version", "note"]
    assert target.query(f"select nested from `{PROJECT}.atomic_marts.t0`").column(0).to_pylist() == \
        [[{"k": "a", "v": [1, 2]}]]


def test_a_load_replaces_raw_alone(engines: tuple[DuckDBWarehouse, BigQueryWarehouse]) -> None:
    _, bq = engines
    relations, version = bq.relations(), bq.version()

    def created() -> dict[str, Any]:
        return {r.name: bq.client.get_table(bq._table_id(r)).created for r in relations if r.schema == "marts"}

    marts = created()
    counts = load(bq.settings, bq)
    assert counts["dicom_instances"] > 0
    assert bq.relations() == relations and created() == marts  # the marts were not copied back and forth
    assert bq.version() != version  # a new publication: a dashboard reads raw again
    assert not any(NEXT_SUFFIX in d.dataset_id for d in bq.client.list_datasets())


def test_one_writer_at_a_time(engines: tuple[DuckDBWarehouse, BigQueryWarehouse]) -> None:
    _, bq = engines
    version = bq.version()
    with WriterLock(bq.settings.warehouse_dir / LOCK_FILE), pytest.raises(UserError, match="is writing the warehouse"):
        build(bq.settings, SHIPPED_COHORTS_DIR, bq)
    assert bq.version() == version
