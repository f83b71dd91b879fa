"""Cohorts as code: cohorts/*.yml compiled into dbt models by `cohortdb build`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cohortdb.cli.main import app
from cohortdb.cohorts.compile import compile_cohorts
from cohortdb.cohorts.definitions import load_cohorts
from cohortdb.cohorts.select import select_records
from cohortdb.project import SHIPPED_COHORTS_DIR
from cohortdb.warehouse import open_target
from ingest.errors import UserError
from ingest.settings import Settings, resolve_settings
from tests.warehouse import rows


def test_repository_cohorts_parse() -> None:
    cohorts = {c.name: c for c in load_cohorts(SHIPPED_COHORTS_DIR)}
    seed = cohorts["seed000_covid_chest_xr"]
    assert seed.index == "imaging_study" and seed.filter is not None
    assert {"nested": {"path": "imaging_study_annotations", ">=": {"midrc_mRALE_score": 20}}} in seed.filter["AND"]
    assert cohorts["portable_chest_high_kvp"].dicom_conditions == ["kvp > 80", "manufacturer like 'CARESTREAM%'"]


def test_built_cohort_equals_the_cli_translation(built: Settings) -> None:
    filter_ = next(c for c in load_cohorts(SHIPPED_COHORTS_DIR) if c.name == "seed000_covid_chest_xr").filter
    selected = select_records(open_target(built), "imaging_study", filter_, ids_only=True).column(0).to_pylist()
    built_rows = rows(built, "select study_uid from cohorts.seed000_covid_chest_xr order by study_uid")
    assert [r["study_uid"] for r in built_rows] == sorted(selected)
    # Independently: the seed's conditions written out on the marts.
    expected = rows(built, """
        select study_uid from marts.imaging_studies
        where in_guppy and loinc_system = 'Chest' and sex = 'Male' and ethnicity = 'Hispanic or Latino'
          and age_at_index >= 70 and list_has_any(guppy_modalities, ['DX', 'CR'])
          and midrc_mrale_score >= 20
          and len(list_filter(days_from_study_to_pos_covid_test, d -> d >= -2)) > 0
          and len(list_filter(days_from_study_to_pos_covid_test, d -> d <= 0)) > 0
        order by study_uid""")
    assert built_rows == expected


def test_dicom_conditions_and_files_companion(built: Settings) -> None:
    cohort = rows(built, "select study_uid from cohorts.portable_chest_high_kvp order by study_uid")
    expected = rows(built, """
        select s.study_uid from marts.imaging_studies s
        where s.in_guppy and list_has_any(s.guppy_modalities, ['CR', 'DX']) and s.midrc_mrale_score >= 10
          and exists (select 1 from marts.dicom_instances i where i.study_instance_uid = s.study_uid
                      and i.kvp > 80 and i.manufacturer like 'CARESTREAM%')
        order by s.study_uid""")
    assert cohort == expected and cohort
    files = rows(built, "select object_id, study_uid from cohorts.portable_chest_high_kvp__files")
    expected_files = rows(built, """
        select object_id, study_uid from marts.data_files
        where study_uid in (select study_uid from cohorts.portable_chest_high_kvp)""")
    assert sorted(files, key=str) == sorted(expected_files, key=str) and files


def test_dicom_conditions_see_only_dicom_instances_columns(built: Settings, tmp_path: Path) -> None:
    from cohortdb import Warehouse

    (tmp_path / "typo.yml").write_text("index: imaging_study\nfilter: {}\ndicom_conditions: [kvpp > 80]\n")
    (tmp_path / "mart_column.yml").write_text("index: case\nfilter: {}\ndicom_conditions: [\"sex = 'Male'\"]\n")
    wh = Warehouse(built.warehouse_dir, cohorts=tmp_path)
    with pytest.raises(UserError) as error:
        wh.cohort("typo")
    candidates = str(error.value).split("Candidate bindings:")[1].splitlines()[0]
    assert '"kvp"' in candidates and "guppy" not in candidates and "in_guppy" not in str(error.value)
    # a column of the mart (patients.sex), not of marts.dicom_instances, is no DICOM condition
    with pytest.raises(UserError) as error:
        wh.cohort("mart_column")
    assert 'column "sex" not found' in str(error.value)
    assert wh.cohort({}, index="case", dicom_conditions=["patient_sex = 'M'"]).height > 0


def test_cohort_list_shows_built_sizes(built: Settings) -> None:
    result = CliRunner().invoke(app, ["--warehouse", str(built.warehouse_dir), "cohort", "list", "-f", "json"])
    assert result.exit_code == 0, result.output
    listed = {c["name"]: c for c in json.loads(result.output)}
    assert set(listed) == {c.name for c in load_cohorts(SHIPPED_COHORTS_DIR)}
    size = rows(built, "select count(*) as n from cohorts.portable_chest_high_kvp")[0]["n"]
    assert listed["portable_chest_high_kvp"]["rows_built"] == size


@pytest.mark.parametrize(("file_name", "text", "message"), [
    ("Bad-Name.yml", "index: case\n", "cohort name 'Bad-Name'"),
    ("x.yml", "index: patients\n", "index must be one of"),
    ("x.yml", "index: case\nfitler: {}\n", "unknown keys ['fitler']"),
    ("x.yml", "index: case\nfilter: {'>=': {sex: Male}}\n", "not a valid guppy filter"),
    ("x.yml", "index: case\nfilter: [\n", "cannot read cohort"),
    ("x.json", '{"index": "case", "dicom_conditions": [1]}', "dicom_conditions must be a list"),
])
def test_bad_definitions_are_one_line_errors(tmp_path: Path, file_name: str, text: str, message: str) -> None:
    (tmp_path / file_name).write_text(text)
    with pytest.raises(UserError) as error:
        load_cohorts(tmp_path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_unknown_field_names_the_cohort_and_leaves_models_alone(tmp_path: Path, settings: Settings) -> None:
    definitions = tmp_path / "cohorts"
    definitions.mkdir()
    (definitions / "typo.yml").write_text("index: imaging_study\nfilter: {'=': {study_modalty: CT}}\n")
    out = tmp_path / "generated"
    out.mkdir()
    (out / "keep.sql").write_text("select 1")
    with pytest.raises(UserError) as error:
        compile_cohorts(settings, definitions, out_dir=out)
    assert "cohort typo" in str(error.value) and "study_modalty" in str(error.value)
    assert [p.name for p in out.iterdir()] == ["keep.sql"]


def test_compiled_models_are_marked_generated(tmp_path: Path, settings: Settings) -> None:
    out = tmp_path / "generated"
    compiled = compile_cohorts(settings, SHIPPED_COHORTS_DIR, out_dir=out)
    for cohort in compiled:
        for suffix in ("", "__files"):
            text = (out / f"{cohort.name}{suffix}.sql").read_text()
            assert text.startswith("-- Generated by `cohortdb build`")
    assert "seed000_covid_chest_xr__files" in (out / "_cohorts__models.yml").read_text()


def _guppy_only_warehouse(root: Path, name: str) -> Path:
    """A warehouse loaded from two imaging_study records (no DICOM): quick to build."""
    dump = root / f"{name}.json"
    dump.write_text(json.dumps([{"submitter_id": "1.2.3", "study_modality": ["CT"], "sex": ["Male"]},
                                {"submitter_id": "1.2.4", "study_modality": ["CR"], "sex": ["Female"]}]))
    warehouse = root / name
    result = CliRunner().invoke(app, ["--warehouse", str(warehouse), "ingest", "guppy", "--index", "imaging_study",
                                      "--from-json", str(dump)])
    assert result.exit_code == 0, result.output
    return warehouse


def test_two_warehouses_of_one_checkout_keep_their_own_cohorts(tmp_path: Path) -> None:
    """Each build compiles its --cohorts into its own warehouse; nothing lands in the checkout."""
    for name, modality in (("ct", "CT"), ("cr", "CR")):
        definitions = tmp_path / f"cohorts-{name}"
        definitions.mkdir()
        definition = f"index: imaging_study\nfilter: {{'=': {{study_modality: {modality}}}}}\n"
        (definitions / f"only_{name}.yml").write_text(definition)
        warehouse = _guppy_only_warehouse(tmp_path, f"wh-{name}")
        result = CliRunner().invoke(app, ["--warehouse", str(warehouse), "--cohorts", str(definitions), "build"])
        assert result.exit_code == 0, result.output
        listed = CliRunner().invoke(app, ["--warehouse", str(warehouse), "--cohorts", str(definitions),
                                          "cohort", "list", "-f", "json"])
        assert [(c["name"], c["rows_built"]) for c in json.loads(listed.stdout)] == [(f"only_{name}", 1)]
    for name, other in (("ct", "cr"), ("cr", "ct")):
        settings = resolve_settings(tmp_path / f"wh-{name}")
        built_cohorts = rows(settings, "select table_name from information_schema.tables "
                                       "where table_schema = 'cohorts' order by 1")
        assert [r["table_name"] for r in built_cohorts] == [f"only_{name}", f"only_{name}__files"]
        generated = settings.warehouse_dir / "dbt" / "project" / "generated" / "cohorts"
        assert sorted(p.name for p in generated.iterdir()) == [
            "_cohorts__models.yml", f"only_{name}.sql", f"only_{name}__files.sql"]
        assert not (generated / f"only_{other}.sql").exists()
    assert not (SHIPPED_COHORTS_DIR.parent / "models" / "cohorts" / "generated").exists()


def test_dicom_conditions_are_translated_for_bigquery_or_refused_by_name() -> None:
    from cohortdb.cohorts.compile import translate_condition

    assert translate_condition("kvp > 80", "duckdb") == "kvp > 80"
    assert translate_condition("\"Rows\" >= 512 and kvp::int > 80", "bigquery") == (
        "`Rows` >= 512 AND CAST(kvp AS INT64) > 80")
    assert translate_condition("regexp_matches(manufacturer, '^CARE')", "bigquery") == (
        "REGEXP_CONTAINS(manufacturer, '^CARE')")
    with pytest.raises(UserError, match="'kvp >' has no bigquery translation"):
        translate_condition("kvp >", "bigquery")
