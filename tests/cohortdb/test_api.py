"""The Python API: ``cohortdb.Warehouse`` on a built warehouse (read-only, parameterized, clear errors)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest

from cohortdb import UserError, Warehouse
from cohortdb.cohorts.definitions import load_cohorts, read_cohort
from cohortdb.project import SHIPPED_COHORTS_DIR
from cohortdb.warehouse import open_target
from cohortdb.warehouse.duckdb import database_path
from ingest.settings import Settings
from tests.cli import run_cli
from tests.warehouse import rows


@pytest.fixture(scope="module")
def wh(built: Settings) -> Warehouse:
    return Warehouse(built.warehouse_dir, cohorts=SHIPPED_COHORTS_DIR)


def _seed_filter() -> dict[str, object]:
    seed = next(c for c in load_cohorts(SHIPPED_COHORTS_DIR) if c.name == "seed000_covid_chest_xr")
    assert seed.filter is not None
    return seed.filter


def test_sql_is_parameterized_and_returns_polars(wh: Warehouse, built: Settings) -> None:
    frame = wh.sql("select count(*) as n from marts.imaging_studies where sex = ? and in_dicom = ?", ["Male", True])
    assert isinstance(frame, pl.DataFrame) and frame.columns == ["n"]
    expected = rows(built, "select count(*) as n from marts.imaging_studies where sex = 'Male' and in_dicom")
    assert frame["n"].to_list() == [expected[0]["n"]] and expected[0]["n"] > 0
    hostile = "x'); drop table marts.imaging_studies; --"
    assert wh.sql("select ? as v", [hostile])["v"].to_list() == [hostile]
    table = wh.sql_arrow("select study_uid from marts.imaging_studies order by study_uid limit 3")
    assert isinstance(table, pa.Table) and table.num_rows == 3


def test_sql_is_read_only(wh: Warehouse, built: Settings) -> None:
    before = rows(built, "select count(*) as n from marts.imaging_studies")
    for statement in ("delete from marts.imaging_studies", "create table marts.x as select 1",
                      "select * from read_csv('/etc/passwd')", "select 1; select 2",
                      f"copy (select 1) to '{built.warehouse_dir}/x.csv'"):
        with pytest.raises(UserError) as error:
            wh.sql(statement)
        first, *rest = str(error.value).splitlines()  # a SQL error goes on with DuckDB's query line and caret
        assert first and all(line.startswith(("LINE ", " ", "Did you mean", "Candidate")) for line in rest)
    assert rows(built, "select count(*) as n from marts.imaging_studies") == before
    assert not (built.warehouse_dir / "x.csv").exists()


def test_no_lock_is_held_between_calls(wh: Warehouse, built: Settings) -> None:
    wh.sql("select 1")
    writer = duckdb.connect(str(database_path(built)))  # fails while any reader holds the file
    writer.close()


def test_tables_lists_every_schema(wh: Warehouse) -> None:
    tables = wh.tables()
    assert tables.columns == ["schema", "name", "kind"]
    listed = set(zip(tables["schema"], tables["name"], strict=True))
    assert {("raw", "dicom_elements"), ("marts", "imaging_studies"), ("cohorts", "seed000_covid_chest_xr")} <= listed


def test_saved_cohort_equals_the_built_model(wh: Warehouse, built: Settings) -> None:
    for name, key in (("seed000_covid_chest_xr", "study_uid"), ("portable_chest_high_kvp", "study_uid")):
        selected = wh.cohort(name)
        built_rows = rows(built, f"select * from cohorts.{name} order by {key}")
        assert selected[key].to_list() == [r[key] for r in built_rows]
        columns = rows(built, f"select column_name from information_schema.columns where table_name = '{name}' "
                              "order by ordinal_position")
        assert selected.columns == [c["column_name"] for c in columns]
    assert wh.cohort("portable_chest_high_kvp").height > 0


def test_a_filter_as_a_cohort(wh: Warehouse) -> None:
    adhoc = wh.cohort(_seed_filter(), index="imaging_study")
    assert adhoc["study_uid"].to_list() == wh.cohort("seed000_covid_chest_xr")["study_uid"].to_list()
    chest = {"IN": {"study_modality": ["CR", "DX"]}}
    with_dicom = wh.cohort(chest, dicom_conditions=["kvp > 80"])
    without = wh.cohort(chest)
    assert 0 < with_dicom.height < without.height
    assert set(with_dicom["study_uid"]) <= set(without["study_uid"])
    cases = wh.cohort({"=": {"sex": "Female"}}, index="case")
    assert cases.height > 0 and "case_id" in cases.columns


def test_records_are_what_the_cli_selects(wh: Warehouse, built: Settings, tmp_path: Path) -> None:
    filter_path = tmp_path / "f.json"
    filter_path.write_text(json.dumps(_seed_filter()))
    cli = run_cli("--warehouse", str(built.warehouse_dir), "cohort", "--index", "imaging_study",
                  "--filter", str(filter_path), "--format", "ids")
    assert cli.exit_code == 0, cli.output
    records = wh.records("imaging_study", _seed_filter())
    assert records["submitter_id"].to_list() == cli.stdout.split()
    assert "_record" not in records.columns
    assert wh.records("imaging_study").height >= records.height


@pytest.mark.parametrize(("call", "message"), [
    (lambda wh: wh.cohort("nobody"), "no cohort named 'nobody'"),
    (lambda wh: wh.cohort({"=": {"no_such_field": 1}}), "no_such_field"),
    (lambda wh: wh.cohort({"AND": "x"}), "not a valid guppy filter: filter.AND"),
    (lambda wh: wh.cohort({}, index="patients"), "index must be one of"),
    (lambda wh: wh.records("no_such_index"), "cohortdb load"),
])
def test_errors_are_one_line(wh: Warehouse, call: object, message: str) -> None:
    with pytest.raises(UserError) as error:
        call(wh)  # type: ignore[operator]
    assert message in str(error.value) and "\n" not in str(error.value)


def test_an_error_in_sql_keeps_duckdbs_hints(wh: Warehouse) -> None:
    with pytest.raises(UserError) as error:
        wh.sql("select * from marts.imaging_studie")
    assert str(error.value).splitlines() == [
        "Catalog Error: Table with name imaging_studie does not exist!",
        'Did you mean "imaging_studies"?',
        "LINE 1: select * from marts.imaging_studie",
        " " * len("LINE 1: select * from ") + "^",
    ]


def test_missing_and_unbuilt_warehouses(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(UserError, match="no warehouse at .*cohortdb --warehouse"):
        Warehouse(tmp_path / "none")
    open_target(settings).load()  # loaded, not built: raw tables only
    loaded = Warehouse(settings.warehouse_dir)
    assert loaded.sql("select count(*) as n from raw.dicom_instances")["n"].to_list() == [0]
    with pytest.raises(UserError, match="run `cohortdb build` first"):
        loaded.cohort({})


def test_save_cohort_then_select_it(wh: Warehouse, built: Settings, tmp_path: Path) -> None:
    mine = Warehouse(built.warehouse_dir, cohorts=tmp_path / "cohorts")
    assert mine.cohorts().height == 0
    path = mine.save_cohort("male_chest", {"AND": [{"=": {"sex": "Male"}}, {"IN": {"study_modality": ["CR"]}}]},
                            description="Male CR studies.", dicom_conditions=["kvp > 60"])
    assert path == tmp_path / "cohorts" / "male_chest.yml"
    saved = read_cohort(path)
    assert (saved.name, saved.index, saved.dicom_conditions) == ("male_chest", "imaging_study", ["kvp > 60"])
    listed = mine.cohorts()
    assert listed["name"].to_list() == ["male_chest"] and listed["rows_built"].to_list() == [None]
    by_name = mine.cohort("male_chest")
    assert by_name.equals(mine.cohort(saved.filter or {}, dicom_conditions=["kvp > 60"]))
    with pytest.raises(UserError, match="already exists"):
        mine.save_cohort("male_chest", {})
    mine.save_cohort("male_chest", {"=": {"sex": "Female"}}, overwrite=True)
    assert read_cohort(path).filter == {"=": {"sex": "Female"}}
    with pytest.raises(UserError, match="cohort name"):
        mine.save_cohort("Bad Name", {})
    assert sorted(p.name for p in (tmp_path / "cohorts").iterdir()) == ["male_chest.yml"]
    assert wh.cohorts()["rows_built"].to_list() == [
        rows(built, f"select count(*) as n from cohorts.{name}")[0]["n"] for name in wh.cohorts()["name"]]
